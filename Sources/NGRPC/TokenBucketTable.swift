import Synchronization

/// Token buckets by key (one per caller identity): `burst` tokens at most, refilled at `rate`
/// per second; each call takes one. Pure bookkeeping with the time passed in, so tests drive it
/// with a fake clock.
///
/// Memory stays bounded: a bucket idle long enough to have refilled completely is the same as a
/// missing one, so such buckets are swept out once the table reaches `capacity`; if too few were,
/// those idle longest go too (their owners start again with a full burst, which errs towards
/// serving). Thread-safe: the table is guarded by `state`'s mutex.
public final class TokenBucketTable: Sendable {
    public let rate: Double
    public let burst: Double
    public let capacity: Int

    /// What `take` decided.
    public enum Decision: Sendable, Hashable {
        case allowed
        /// Over the limit: one token will be available after `retryAfter`.
        case limited(retryAfter: Duration)
    }

    private struct Bucket {
        var tokens: Double
        var updated: ContinuousClock.Instant
    }

    private struct State {
        var buckets: [String: Bucket] = [:]
    }

    private let state = Mutex(State())

    /// - Parameters:
    ///   - rate: tokens added per second (> 0).
    ///   - burst: the most tokens a bucket holds (≥ 1): calls allowed back to back after a quiet spell.
    ///   - capacity: most keys remembered at once.
    public init(rate: Double, burst: Int, capacity: Int = 100_000) {
        precondition(rate > 0 && burst >= 1 && capacity >= 1, "rate > 0, burst >= 1, capacity >= 1")
        self.rate = rate
        self.burst = Double(burst)
        self.capacity = capacity
    }

    /// Number of keys currently remembered.
    public var count: Int { state.withLock { $0.buckets.count } }

    /// Takes one token from `key`'s bucket at time `now`.
    public func take(_ key: String, now: ContinuousClock.Instant = .now) -> Decision {
        state.withLock { state in
            var bucket: Bucket
            if let existing = state.buckets[key] {
                bucket = existing
                let elapsed = now - bucket.updated
                if elapsed > .zero {
                    bucket.tokens = min(burst, bucket.tokens + Self.seconds(elapsed) * rate)
                    bucket.updated = now
                }
            } else {
                if state.buckets.count >= capacity { evict(&state, now: now) }
                bucket = Bucket(tokens: burst, updated: now)
            }
            let decision: Decision
            if bucket.tokens >= 1 {
                bucket.tokens -= 1
                decision = .allowed
            } else {
                let missing = 1 - bucket.tokens
                decision = .limited(retryAfter: .nanoseconds(Int64((missing / rate * 1e9).rounded(.up))))
            }
            state.buckets[key] = bucket
            return decision
        }
    }

    /// Drops every bucket that has refilled by `now`, then, if that freed less than an eighth of
    /// the table, the buckets idle longest until it has. Freeing a batch keeps the cost amortized:
    /// a stream of new callers (many addresses, say) pays one sweep per `capacity / 8` of them,
    /// not one per call.
    private func evict(_ state: inout State, now: ContinuousClock.Instant) {
        state.buckets = state.buckets.filter { _, bucket in
            bucket.tokens + Self.seconds(now - bucket.updated) * rate < burst
        }
        let target = capacity - max(1, capacity / 8)
        if state.buckets.count > target {
            let oldest = state.buckets.sorted { $0.value.updated < $1.value.updated }.prefix(state.buckets.count - target)
            for (key, _) in oldest { state.buckets[key] = nil }
        }
    }

    private static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}
