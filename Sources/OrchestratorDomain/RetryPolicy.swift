/// How often a task may be attempted and how long to wait between attempts.
///
/// The state machine uses `maxAttempts` to decide between "back to ready" and "failed"; the dispatcher
/// uses `backoff(afterAttempt:)` to choose the not-before time of the retry.
public struct RetryPolicy: Hashable, Sendable, Codable {
    /// Total attempts allowed, the first one included (1 means never retry).
    public var maxAttempts: Int
    public var initialBackoffMillis: Int
    public var maxBackoffMillis: Int
    public var backoffMultiplier: Double

    public init(
        maxAttempts: Int = 3, initialBackoffMillis: Int = 1_000, maxBackoffMillis: Int = 60_000,
        backoffMultiplier: Double = 2
    ) {
        self.maxAttempts = maxAttempts
        self.initialBackoffMillis = initialBackoffMillis
        self.maxBackoffMillis = maxBackoffMillis
        self.backoffMultiplier = backoffMultiplier
    }

    public static let `default` = RetryPolicy()
    public static let never = RetryPolicy(maxAttempts: 1)

    /// The delay before attempt `attempt + 1`, growing geometrically and capped at `maxBackoffMillis`.
    public func backoff(afterAttempt attempt: Int) -> Int {
        guard attempt >= 1 else { return 0 }
        var delay = Double(initialBackoffMillis)
        for _ in 1..<attempt {
            delay *= backoffMultiplier
            if delay >= Double(maxBackoffMillis) { return maxBackoffMillis }
        }
        return min(Int(delay), maxBackoffMillis)
    }
}
