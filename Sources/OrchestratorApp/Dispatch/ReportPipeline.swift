import Synchronization

/// Admission for the reports of one lease stream: up to `limit` are applied at once (so an
/// executor's completions share the store's batches instead of waiting for each other's commits),
/// while two reports of the same lease still go one after the other (progress, then completion).
/// Bounded, so an executor that floods reports is slowed down at the stream, not queued in memory.
final class ReportPipeline: Sendable {
    private struct State {
        var inFlight: Set<LeaseToken> = []
        var waiters: [CheckedContinuation<Void, Never>] = []
        var closed = false
    }

    /// Guards the set of leases in flight and the waiting admissions.
    private let state = Mutex(State())
    private let limit: Int

    init(limit: Int) { self.limit = max(1, limit) }

    /// Returns true once `lease` may be applied (fewer than `limit` reports in flight and none of
    /// `lease`), false when the pipeline was closed first: the report must not be applied.
    @discardableResult
    func admit(_ lease: LeaseToken) async -> Bool {
        while true {
            let admitted = state.withLock { state -> Bool? in
                if state.closed { return false }
                guard state.inFlight.count < limit, !state.inFlight.contains(lease) else { return nil }
                state.inFlight.insert(lease)
                return true
            }
            if let admitted { return admitted }
            await withCheckedContinuation { continuation in
                let wait = state.withLock { state -> Bool in
                    // Re-checked under the lock: a report may have finished since.
                    guard !state.closed, state.inFlight.count >= limit || state.inFlight.contains(lease) else { return false }
                    state.waiters.append(continuation)
                    return true
                }
                if !wait { continuation.resume() }
            }
        }
    }

    /// Returns once no report is in flight (the session's end: leases are given back after).
    func idle() async {
        while true {
            if state.withLock({ $0.inFlight.isEmpty }) { return }
            await withCheckedContinuation { continuation in
                let wait = state.withLock { state -> Bool in
                    guard !state.inFlight.isEmpty else { return false }
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
            state.inFlight.remove(lease)
            defer { state.waiters.removeAll() }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }
}
