// TestSupport: helpers the test targets share (test targets cannot depend on each other).

import Foundation

/// Loopback ports for servers a test starts on a port it chose (to restart them on the same one).
///
/// A port the kernel picks for a bind to port 0 comes from the ephemeral range (32768–60999), the
/// same range every outgoing connection takes its local port from: between picking one and the
/// server binding it, a client connection of a test running in parallel can take it ("Address
/// already in use"). Ports below that range are only taken by explicit binds. Same rule as
/// tools/lib/free_port.py.
public enum FreePort {
    /// A port in 20000 up to the ephemeral range's start that nothing is bound to now.
    public static func belowEphemeralRange() -> Int? {
        let start = ephemeralRangeStart()
        guard start > 21_000 else { return nil }
        for _ in 0..<200 {
            let port = Int.random(in: 20_000..<start)
            if bindsNow(port) { return port }
        }
        return nil
    }

    /// Like `belowEphemeralRange()`, for callers that cannot go on without a port.
    public static func pick() -> Int {
        guard let port = belowEphemeralRange() else { fatalError("no free loopback port below the ephemeral range") }
        return port
    }

    static func ephemeralRangeStart() -> Int {
        guard let text = try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8),
              let first = text.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).first, let start = Int(first)
        else { return 32_768 }
        return start
    }

    static func bindsNow(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = in_port_t(UInt16(port)).bigEndian
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        return bound == 0
    }
}
