import Synchronization

/// Serialises a lease stream's outbound messages through one writer task, and measures how long
/// the oldest message has waited. A message that waits means HTTP/2 flow control is holding it:
/// the executor stopped reading. The session gives up its leases when that lasts too long, even
/// though the blocked write itself cannot be interrupted.
///
/// Thread-safety: counters behind `state`'s mutex; the stream continuation is Sendable.
final class SessionOutbox: Sendable {
    private struct State {
        var pending = 0
        /// Of `pending`, the assignments: dispatch holds back new work only while these wait
        /// (queued acks must not keep a free executor idle).
        var pendingAssignments = 0
        var oldestPendingSince: ContinuousClock.Instant?
        var failure: (any Error)?
        /// Dispatch loops waiting for `pendingAssignments` to reach zero, by waiter id.
        var assignmentWaiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
        var nextWaiterID: UInt64 = 0

        /// The waiters to resume now that no assignment is pending (or the writer failed).
        mutating func takeAssignmentWaiters() -> [CheckedContinuation<Void, Never>] {
            guard pendingAssignments == 0 || failure != nil else { return [] }
            defer { assignmentWaiters = [:] }
            return Array(assignmentWaiters.values)
        }
    }

    /// A class so that the writer task can share the counters without capturing `self`.
    private final class Counters: Sendable {
        let state = Mutex(State())
    }

    private let counters = Counters()
    private let continuation: AsyncStream<SessionOutput>.Continuation
    private let writer: Task<Void, Never>

    init(send: @escaping @Sendable (SessionOutput) async throws -> Void) {
        let (stream, continuation) = AsyncStream<SessionOutput>.makeStream()
        self.continuation = continuation
        let counters = self.counters
        writer = Task {
            for await output in stream {
                do {
                    try await send(output)
                } catch {
                    if case .assignment(let task) = output, let span = task.dispatchSpan {
                        span.recordError(error)
                        span.end()
                    }
                    let waiters = counters.state.withLock { state in
                        state.failure = error
                        return state.takeAssignmentWaiters()
                    }
                    for waiter in waiters { waiter.resume() }
                    return
                }
                // The transport took the assignment: dispatch is done (see `ClaimedTask.dispatchSpan`).
                if case .assignment(let task) = output { task.dispatchSpan?.end() }
                let wasAssignment = if case .assignment = output { true } else { false }
                let waiters = counters.state.withLock { state in
                    state.pending -= 1
                    if wasAssignment { state.pendingAssignments -= 1 }
                    state.oldestPendingSince = state.pending == 0 ? nil : ContinuousClock.now
                    return wasAssignment ? state.takeAssignmentWaiters() : []
                }
                for waiter in waiters { waiter.resume() }
            }
        }
    }

    /// Queues a message; never blocks. Throws once the writer failed (the stream is gone).
    func enqueue(_ output: SessionOutput) throws {
        try counters.state.withLock { state in
            if let failure = state.failure { throw failure }
            state.pending += 1
            if case .assignment = output { state.pendingAssignments += 1 }
            if state.oldestPendingSince == nil { state.oldestPendingSince = ContinuousClock.now }
        }
        continuation.yield(output)
    }

    /// Messages not yet accepted by the transport.
    var pending: Int { counters.state.withLock { $0.pending } }

    /// Assignments not yet accepted by the transport.
    var pendingAssignments: Int { counters.state.withLock { $0.pendingAssignments } }

    /// How long the oldest queued message has been waiting, or zero.
    var stalledFor: Duration {
        counters.state.withLock { state in state.oldestPendingSince.map { ContinuousClock.now - $0 } ?? .zero }
    }

    var failure: (any Error)? { counters.state.withLock { $0.failure } }

    /// Stops accepting messages; the writer sends what is queued, then ends.
    func finish() {
        continuation.finish()
    }

    /// Returns once no assignment waits to be written (the transport took them all, or the writer
    /// failed), or after `timeout`. The dispatch loop holds back new work while assignments wait;
    /// without this wake-up it slept its whole recheck interval (200 ms) after an assignment the
    /// transport took a moment later, while ready tasks and a free slot waited (found by
    /// black-box testing: the second child of a diamond leased ~195 ms after the first).
    func waitUntilAssignmentsWritten(timeout: Duration) async {
        let id = counters.state.withLock { state -> UInt64 in
            state.nextWaiterID &+= 1
            return state.nextWaiterID
        }
        let counters = self.counters
        let timer = Task {
            try? await Task.sleep(for: timeout)
            counters.state.withLock { $0.assignmentWaiters.removeValue(forKey: id) }?.resume()
        }
        defer { timer.cancel() }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = counters.state.withLock { state -> Bool in
                    if state.pendingAssignments == 0 || state.failure != nil || Task.isCancelled { return true }
                    state.assignmentWaiters[id] = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            counters.state.withLock { $0.assignmentWaiters.removeValue(forKey: id) }?.resume()
        }
    }

    /// Waits until everything queued was written (or the writer failed).
    func drained() async {
        await writer.value
    }
}
