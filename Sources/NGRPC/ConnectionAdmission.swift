internal import CNGRPCShims
import Synchronization

/// Counts open connections, per client IP address and in all, and refuses those past either
/// limit: one client cannot hold every socket (and every stream slot) of the server, and all
/// clients together cannot take the file descriptors the process needs for everything else.
///
/// Thread-safe: the counts are guarded by `counts`' mutex (accept runs on one loop, closes on any).
/// Memory: an address is forgotten when its last connection closes.
final class ConnectionAdmission: Sendable {
    enum Decision: Equatable {
        case admitted
        /// The client already has `limit` connections open.
        case tooManyFromClient
        /// The server already has `totalLimit` connections open.
        case tooManyInAll
    }

    let limit: Int?
    let totalLimit: Int?
    private let counts = Mutex<(perClient: [String: Int], total: Int)>(([:], 0))

    init(limit: Int?, totalLimit: Int? = nil) {
        self.limit = limit
        self.totalLimit = totalLimit
    }

    /// Counts a new connection from `client` unless it would pass a limit (then nothing is counted).
    func admit(_ client: String) -> Decision {
        counts.withLock { counts in
            if let totalLimit, counts.total >= totalLimit { return .tooManyInAll }
            if let limit {
                let open = counts.perClient[client, default: 0]
                guard open < limit else { return .tooManyFromClient }
                counts.perClient[client] = open + 1
            }
            counts.total += 1
            return .admitted
        }
    }

    /// Forgets a connection counted by `admit`.
    func release(_ client: String) {
        counts.withLock { counts in
            counts.total -= 1
            guard limit != nil, let open = counts.perClient[client] else { return }
            if open <= 1 { counts.perClient[client] = nil } else { counts.perClient[client] = open - 1 }
        }
    }

    /// Connections open now, all listeners together.
    var openConnections: Int { counts.withLock { $0.total } }

    func openConnections(from client: String) -> Int {
        counts.withLock { $0.perClient[client] ?? 0 }
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
