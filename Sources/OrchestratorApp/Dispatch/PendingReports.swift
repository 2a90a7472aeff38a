import Synchronization

/// The reports a lease stream has read and not yet had admitted by its `ReportPipeline`, in the
/// order they came. The stream's reader queues them and goes on reading, so heartbeats behind a
/// report that waits for admission are still answered: a report behind a failure that is applied
/// alone (which can take seconds of lock waits under fail_fast) held up the heartbeats behind it,
/// and with a short TTL every lease of the stream lapsed — the failure among them, refused as
/// stale, and its workflow succeeded (found by black-box testing).
///
/// Bounded: once `limit` reports wait, the reader waits too, so an executor that floods reports
/// is slowed down at the stream, not queued in memory. Neither side can be cancelled: every
/// report read is admitted and applied, or answered, even when the stream breaks meanwhile.
///
/// Thread-safety: every field is guarded by `state`'s mutex; continuations are resumed outside it.
final class PendingReports: Sendable {
    struct Report: Sendable {
        let lease: LeaseToken
        let outcome: TaskReport.Outcome
    }

    private struct State {
        var queue: [Report] = []
        var finished = false
        /// The admitting side, waiting for a report (only while `queue` is empty).
        var consumer: CheckedContinuation<Report?, Never>?
        /// Reading sides waiting for room.
        var producers: [CheckedContinuation<Void, Never>] = []
    }

    private let state = Mutex(State())
    private let limit: Int

    init(limit: Int) { self.limit = max(1, limit) }

    /// Queues `report` (or hands it to the waiting consumer); waits while `limit` are queued.
    func push(_ report: Report) async {
        while true {
            let (consumer, queued) = state.withLock { state -> (CheckedContinuation<Report?, Never>?, Bool) in
                if let consumer = state.consumer {
                    state.consumer = nil
                    return (consumer, true)
                }
                guard state.queue.count < limit else { return (nil, false) }
                state.queue.append(report)
                return (nil, true)
            }
            consumer?.resume(returning: report)
            if queued { return }
            await withCheckedContinuation { continuation in
                let wait = state.withLock { state -> Bool in
                    // Re-checked under the lock: the consumer may have taken one since.
                    guard state.consumer == nil, state.queue.count >= limit else { return false }
                    state.producers.append(continuation)
                    return true
                }
                if !wait { continuation.resume() }
            }
        }
    }

    /// No report comes after the ones queued.
    func finish() {
        let consumer = state.withLock { state -> CheckedContinuation<Report?, Never>? in
            state.finished = true
            defer { state.consumer = nil }
            return state.consumer
        }
        consumer?.resume(returning: nil)
    }

    /// The next report in order; nil once `finish` was called and every report was taken.
    func next() async -> Report? {
        await withCheckedContinuation { continuation in
            let (ready, producers) = state.withLock { state -> (Report??, [CheckedContinuation<Void, Never>]) in
                if !state.queue.isEmpty {
                    let first = state.queue.removeFirst()
                    defer { state.producers = [] }
                    return (.some(first), state.producers)
                }
                if state.finished { return (.some(nil), []) }
                state.consumer = continuation
                return (nil, [])
            }
            for producer in producers { producer.resume() }
            if let ready { continuation.resume(returning: ready) }
        }
    }
}
