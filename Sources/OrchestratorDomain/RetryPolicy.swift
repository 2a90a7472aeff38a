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

    /// The longest delay between attempts (366 days), whatever the policy says: the API refuses
    /// longer backoffs, and policies stored before it did must not overflow the retry time.
    public static let longestBackoffMillis = 366 * 86_400_000

    /// The delay before attempt `attempt + 1`, growing geometrically and capped at `maxBackoffMillis`
    /// (and at `longestBackoffMillis`). Total for any field values: none of them can trap.
    public func backoff(afterAttempt attempt: Int) -> Int {
        guard attempt >= 1 else { return 0 }
        let cap = min(max(maxBackoffMillis, 0), Self.longestBackoffMillis)
        var delay = Double(max(initialBackoffMillis, 0))
        let multiplier = backoffMultiplier.isFinite ? max(backoffMultiplier, 1) : 1
        if delay >= Double(cap) { return cap }
        for _ in 1..<attempt {
            delay *= multiplier
            if delay >= Double(cap) { return cap }
        }
        return Int(delay)
    }
}
