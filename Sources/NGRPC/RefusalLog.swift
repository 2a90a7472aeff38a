import Logging

/// Log lines for connections refused at accept, at most one per reason every 10 seconds with the
/// number refused meanwhile: a client retrying in a loop against a full server wrote one warning
/// per attempt, thousands a second.
///
/// Threading: one listener's loop thread.
struct RefusalLog {
    enum Reason {
        /// Over `maxConnectionsPerClient`.
        case perClient
        /// Over `maxConnections`.
        case inAll
    }

    static let interval: Duration = .seconds(10)

    private var lastLogged: [Reason: ContinuousClock.Instant] = [:]
    private var suppressed: [Reason: Int] = [:]

    /// Counts one refusal and logs it unless a line for `reason` went out within `interval`.
    mutating func note(peer: String, reason: Reason, now: ContinuousClock.Instant, logger: Logger, limit: Int) {
        if let last = lastLogged[reason], now - last < Self.interval {
            suppressed[reason, default: 0] += 1
            return
        }
        let earlier = suppressed[reason] ?? 0
        lastLogged[reason] = now
        suppressed[reason] = 0
        var metadata: Logger.Metadata = ["peer": "\(peer)", "limit": "\(limit)"]
        if earlier > 0 { metadata["also_refused_since_last_line"] = "\(earlier)" }
        switch reason {
        case .perClient: logger.warning("connection refused: too many connections from one client", metadata: metadata)
        case .inAll: logger.warning("connection refused: the server has max-connections open", metadata: metadata)
        }
    }
}
