@testable import OrchestratorApp
import Synchronization
import Testing

/// The dispatch loop holds back new claims while an assignment waits to be written, and looks
/// again the moment the transport takes it: found by black-box testing, a diamond's second child
/// was leased ~195 ms after the first (the loop slept its whole recheck interval) while a slot
/// was free.
@Suite("Session outbox", .timeLimit(.minutes(1)))
struct SessionOutboxTests {
    /// A transport that holds each write until the test lets it through (flow control).
    final class Gate: Sendable {
        let waiting = Mutex<[CheckedContinuation<Void, Never>]>([])
        func pass() async { await withCheckedContinuation { continuation in waiting.withLock { $0.append(continuation) } } }
        func open() -> Bool {
            guard let first = waiting.withLock({ $0.isEmpty ? nil : $0.removeFirst() }) else { return false }
            first.resume()
            return true
        }
    }

    @Test func aWaiterWakesWhenTheTransportTakesTheAssignmentNotAtItsTimeout() async throws {
        let gate = Gate()
        let outbox = SessionOutbox { _ in await gate.pass() }
        try outbox.enqueue(.assignment(claimed("t1", attempt: 1, readyAt: 0, leasedAt: 0)))
        #expect(outbox.pendingAssignments == 1)
        let woke = Atomic<Bool>(false)
        // An hour: only the write can end this wait within the suite's time limit.
        let waiter = Task {
            await outbox.waitUntilAssignmentsWritten(timeout: .seconds(3600))
            woke.store(true, ordering: .releasing)
        }
        try await Task.sleep(for: .milliseconds(50))
        let wokeEarly = woke.load(ordering: .acquiring)
        #expect(!wokeEarly, "returned while the assignment was still held")
        while !gate.open() { try await Task.sleep(for: .milliseconds(1)) }
        await waiter.value
        #expect(outbox.pendingAssignments == 0)
        outbox.finish()
        await outbox.drained()
    }

    @Test func aWaiterReturnsAtOnceWhenNothingIsPending() async {
        let outbox = SessionOutbox { _ in }
        await outbox.waitUntilAssignmentsWritten(timeout: .seconds(3600))
        outbox.finish()
        await outbox.drained()
    }

    @Test func theTimeoutStillEndsAWaitOnAStalledTransport() async throws {
        let gate = Gate()
        let outbox = SessionOutbox { _ in await gate.pass() }
        try outbox.enqueue(.assignment(claimed("t1", attempt: 1, readyAt: 0, leasedAt: 0)))
        await outbox.waitUntilAssignmentsWritten(timeout: .milliseconds(20))
        #expect(outbox.pendingAssignments == 1)
        while !gate.open() { try await Task.sleep(for: .milliseconds(1)) }
        outbox.finish()
        await outbox.drained()
    }
}
