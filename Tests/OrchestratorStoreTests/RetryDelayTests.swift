import OrchestratorDomain
import Testing

@testable import OrchestratorStore

/// A retry's delay: the policy's backoff spread by its jitter, never past `max_backoff_ms`
/// (found by black-box testing: a 2 s cap with ±50 % gave delays up to 2.8 s).
@Suite("Retry delays")
struct RetryDelayTests {
    static func spec(initial: Int, max: Int, jitter: Double) -> TaskSpec {
        TaskSpec(key: "t", retry: RetryPolicy(maxAttempts: 5, initialBackoffMillis: initial, maxBackoffMillis: max), retryJitter: jitter)
    }

    @Test func theSpreadNeverPassesTheCap() {
        let capped = Self.spec(initial: 2_000, max: 2_000, jitter: 0.5)
        let delays = stride(from: 0.0, to: 1.0, by: 0.05).map { RetryDelay.millis(spec: capped, afterAttempt: 1, sample: $0) }
        #expect(delays.allSatisfy { $0 <= 2_000 })
        #expect(delays.min() == 1_000)
        // Below the cap the spread goes both ways.
        let roomy = Self.spec(initial: 1_000, max: 60_000, jitter: 0.5)
        #expect(RetryDelay.millis(spec: roomy, afterAttempt: 1, sample: 0) == 500)
        #expect(RetryDelay.millis(spec: roomy, afterAttempt: 1, sample: 0.999_999) == 1_500)
        #expect(RetryDelay.millis(spec: roomy, afterAttempt: 1, sample: 0.5) == 1_000)
    }
}
