import Synchronization

/// Admission for the reports of one lease stream: up to `limit` are applied at once (so an
/// executor's completions share the store's batches instead of waiting for each other's commits),
/// while two reports of the same lease still go one after the other (progress, then completion).
/// Bounded, so an executor that floods reports is slowed down at the stream, not queued in memory.
///
/// A failure is applied alone, after every report sent before it and before any sent after it:
/// it can end the workflow (fail_fast), and overtaking the completions sent just before it (which
/// wait for a group commit) cancelled their tasks and threw their results away (found by
/// black-box testing).
///
/// The dispatch loop asks it which reports came before a claim (`admissions`, `answered`): the
/// tasks a completion made ready are sent after that completion's ack, not before it.
final class ReportPipeline: Sendable {
    private struct InFlight {
        /// Its place in the order of admission.
        let sequence: UInt64
        let subject: ReportSubject
    }

    private struct State {
        var inFlight: [LeaseToken: InFlight] = [:]
        var admitted: UInt64 = 0
        /// The report applied alone, while it is.
        var exclusive: LeaseToken?
        var waiters: [CheckedContinuation<Void, Never>] = []
        var closed = false

        func admits(_ lease: LeaseToken, exclusively: Bool, limit: Int) -> Bool {
            guard exclusive == nil else { return false }
            return exclusively ? inFlight.isEmpty : inFlight.count < limit && inFlight[lease] == nil
        }

        func answered(before mark: UInt64, unblocking task: ClaimedTask) -> Bool {
            !inFlight.contains { lease, report in report.sequence < mark && report.subject.mayHaveMadeReady(task, reportedLease: lease) }
        }
    }

    /// Guards the set of leases in flight and the waiting admissions.
    private let state = Mutex(State())
    private let limit: Int

    init(limit: Int) { self.limit = max(1, limit) }

    /// Returns true once `lease` may be applied (fewer than `limit` reports in flight and none of
    /// `lease`; with `exclusively`, none at all, and none admitted until it finishes), false when
    /// the pipeline was closed first: the report must not be applied.
    @discardableResult
    func admit(_ lease: LeaseToken, exclusively: Bool = false, subject: ReportSubject = .unknown) async -> Bool {
        while true {
            let admitted = state.withLock { state -> Bool? in
                if state.closed { return false }
                guard state.admits(lease, exclusively: exclusively, limit: limit) else { return nil }
                state.inFlight[lease] = InFlight(sequence: state.admitted, subject: subject)
                state.admitted += 1
                if exclusively { state.exclusive = lease }
                return true
            }
            if let admitted { return admitted }
            await withCheckedContinuation { continuation in
                let wait = state.withLock { state -> Bool in
                    // Re-checked under the lock: a report may have finished since.
                    guard !state.closed, !state.admits(lease, exclusively: exclusively, limit: limit) else { return false }
                    state.waiters.append(continuation)
                    return true
                }
                if !wait { continuation.resume() }
            }
        }
    }

    /// How many reports were admitted so far: a mark for `answered(before:)`.
    var admissions: UInt64 { state.withLock { $0.admitted } }

    /// The workflows of the reports admitted before `mark` still in flight, and whether one of
    /// them names a lease not held here: what a claimed task may have to wait for. Reports only
    /// finish after `mark`, so a task of another workflow never has to (the full check,
    /// `answered`, costs a pass over every report in flight per task).
    func inFlightWorkflows(before mark: UInt64) -> (workflows: Set<String>, unknown: Bool) {
        state.withLock { state in
            var workflows = Set<String>()
            var unknown = false
            for report in state.inFlight.values where report.sequence < mark {
                switch report.subject {
                case .task(let workflowID, _, _): workflows.insert(workflowID)
                case .unknown: unknown = true
                }
            }
            return (workflows, unknown)
        }
    }

    /// Whether every report admitted before `mark` that may have made `task` ready was answered
    /// (or given up).
    func answered(before mark: UInt64, unblocking task: ClaimedTask) -> Bool {
        state.withLock { $0.answered(before: mark, unblocking: task) }
    }

    /// Returns once every report admitted before `mark` that may have made `task` ready was
    /// answered (or given up), whatever was admitted since.
    func waitUntilAnswered(before mark: UInt64, unblocking task: ClaimedTask) async {
        await wait { $0.answered(before: mark, unblocking: task) }
    }

    /// Returns once no report is in flight (the session's end: leases are given back after).
    func idle() async {
        await wait { $0.inFlight.isEmpty }
    }

    private func wait(until done: (State) -> Bool) async {
        while true {
            if state.withLock({ done($0) }) { return }
            await withCheckedContinuation { continuation in
                let wait = state.withLock { state -> Bool in
                    guard !done(state) else { return false }
                    state.waiters.append(continuation)
                    return true
                }
                if !wait { continuation.resume() }
            }
        }
    }

    /// No report is admitted after this (the server is shutting down and keeps the stream's
    /// leases: a report applied after the session's last ack went out was stored unanswered).
    /// Those admitted before still finish; `idle` waits for them.
    func close() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.closed = true
            defer { state.waiters.removeAll() }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// The report of `lease` is done: wakes the waiting admissions to check again.
    func finish(_ lease: LeaseToken) {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.inFlight[lease] = nil
            if state.exclusive == lease { state.exclusive = nil }
            defer { state.waiters.removeAll() }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }
}

/// What a report in flight may make ready, from the lease it names.
enum ReportSubject: Sendable {
    /// A lease held here: its completion makes its downstream tasks ready, its failure the task
    /// itself (a retry), and a delegated planner's completion the tasks of the graph it proposes.
    case task(workflowID: String, key: String, mayProposeGraph: Bool)
    /// A lease not held here (resumed elsewhere, or not found yet): anything, as far as we know.
    case unknown

    func mayHaveMadeReady(_ claimed: ClaimedTask, reportedLease: LeaseToken) -> Bool {
        guard case .task(let workflowID, let key, let mayProposeGraph) = self else { return true }
        guard claimed.task.workflowID == workflowID else { return false }
        return mayProposeGraph || claimed.task.taskID == reportedLease.taskID || claimed.upstreamResults[key] != nil
    }
}
