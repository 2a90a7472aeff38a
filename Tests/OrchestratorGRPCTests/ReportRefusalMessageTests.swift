import OrchestratorApp
import OrchestratorDomain
@testable import OrchestratorGRPC
import Testing

/// The messages of refused reports say what the executor can check elsewhere.
@Suite("Report refusal messages")
struct ReportRefusalMessageTests {
    /// The store reads RETRY_WAIT as ready: a stale report on a task in retry backoff said "the
    /// task is ready" while GetWorkflow showed RETRY_WAIT (found by black-box testing).
    @Test func aStaleLeaseOnATaskAwaitingItsNextAttemptSaysSo() {
        let message = ExecutorsService.staleMessage(LeaseToken(taskID: "t1", fencingToken: 1), current: 1, state: .ready)
        #expect(message.contains("(the task is waiting for its next attempt, latest token 1)"), "\(message)")
        let running = ExecutorsService.staleMessage(LeaseToken(taskID: "t1", fencingToken: 1), current: 2, state: .running)
        #expect(running.contains("(the task is running, latest token 2)"), "\(running)")
    }
}
