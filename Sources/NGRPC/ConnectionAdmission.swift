internal import CNGRPCShims
import Synchronization

/// Counts open connections per client IP address and refuses those past the limit, so one client
/// cannot hold every socket (and every stream slot) of the server.
///
/// Thread-safe: the counts are guarded by `counts`' mutex (accept runs on one loop, closes on any).
/// Memory: an address is forgotten when its last connection closes.
final class ConnectionAdmission: Sendable {
    let limit: Int?
    private let counts = Mutex<[String: Int]>([:])

    init(limit: Int?) {
        self.limit = limit
    }

    /// Counts a new connection from `client`; false (and nothing counted) when it would exceed the limit.
    func admit(_ client: String) -> Bool {
        guard let limit else { return true }
        return counts.withLock { counts in
            let open = counts[client, default: 0]
            guard open < limit else { return false }
            counts[client] = open + 1
            return true
        }
    }

    /// Forgets a connection counted by `admit`.
    func release(_ client: String) {
        guard limit != nil else { return }
        counts.withLock { counts in
            guard let open = counts[client] else { return }
            if open <= 1 { counts[client] = nil } else { counts[client] = open - 1 }
        }
    }

    func openConnections(from client: String) -> Int {
        counts.withLock { $0[client] ?? 0 }
    }

    /// The client a peer description belongs to: the IPv4 address (`10.0.0.1:5312` → `10.0.0.1`),
    /// or for IPv6 the /64 network (`[2001:db8:1:2:a:b:c:d]:5312` → `[2001:db8:1:2::]/64`), since
    /// one host commonly holds a whole /64 and could otherwise pose as millions of clients.
    /// Loopback and IPv4-mapped IPv6 addresses stay whole.
    static func clientAddress(ofPeer peer: String) -> String {
        guard let colon = peer.lastIndex(of: ":"), !peer.hasSuffix("]") else { return peer }
        let host = String(peer[..<colon])
        guard host.hasPrefix("["), host.hasSuffix("]") else { return host }
        return ipv6Network(String(host.dropFirst().dropLast())).map { "[\($0)]/64" } ?? host
    }

    /// The /64 prefix of an IPv6 address in text form, or nil when it should stay whole.
    private static func ipv6Network(_ text: String) -> String? {
        var address = in6_addr()
        guard inet_pton(AF_INET6, text, &address) == 1 else { return nil }
        var bytes = withUnsafeBytes(of: &address) { Array($0) }
        let loopback = bytes == [UInt8](repeating: 0, count: 15) + [1]
        let mapped = bytes[0..<10].allSatisfy { $0 == 0 } && bytes[10] == 0xFF && bytes[11] == 0xFF
        guard !loopback, !mapped else { return nil }
        for index in 8..<16 { bytes[index] = 0 }
        withUnsafeMutableBytes(of: &address) { $0.copyBytes(from: bytes) }
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        guard inet_ntop(AF_INET6, &address, &buffer, socklen_t(buffer.count)) != nil else { return nil }
        return cText(buffer)
    }
}

extension ServerContext {
    /// The caller's IP address without the port (`10.0.0.1`, `[::1]`), or its IPv6 /64 network:
    /// the key for per-client limits when no authenticated identity is known.
    public var peerAddress: String { ConnectionAdmission.clientAddress(ofPeer: peer) }
}
