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

    /// The address part of a peer description: `10.0.0.1:5312` → `10.0.0.1`, `[::1]:5312` → `[::1]`.
    static func clientAddress(ofPeer peer: String) -> String {
        guard let colon = peer.lastIndex(of: ":"), peer.hasSuffix("]") == false else { return peer }
        let host = peer[..<colon]
        // A bare IPv6 address without brackets has no port to strip.
        if host.contains(":") && !host.hasPrefix("[") { return peer }
        return String(host)
    }
}

extension ServerContext {
    /// The caller's IP address without the port (`10.0.0.1`, `[::1]`): the key for per-client
    /// limits when no authenticated identity is known.
    public var peerAddress: String { ConnectionAdmission.clientAddress(ofPeer: peer) }
}
