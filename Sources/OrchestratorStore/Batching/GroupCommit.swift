import Synchronization

/// Group commit: each caller submits one request and waits for its own answer, while the requests
/// that queue up are applied together, `maxBatch` at a time, by one call of `run` (one database
/// transaction). A request that finds a free slot starts a batch at once, so an idle server adds no
/// latency; under load, the requests arriving while a batch commits share the next one, and the
/// per-transaction costs (round trips, commit, NOTIFY) are paid once per batch instead of once
/// per request.
///
/// `run` answers every request of its batch, in order (one `Result` each). A waiting caller that
/// is cancelled still gets its answer: its request may already be part of a running batch.
final class GroupCommit<Request: Sendable, Response: Sendable>: Sendable {
    typealias Run = @Sendable ([Request]) async -> [Result<Response, any Error>]

    private struct Waiter {
        var request: Request
        var continuation: CheckedContinuation<Response, any Error>
    }

    private struct State {
        var queue: [Waiter] = []
        /// Batches being applied right now (at most `maxConcurrent`).
        var running = 0
        var statistics = GroupCommitStatistics()
    }

    /// Guards the queue and the running count; continuations are resumed outside it.
    private let state = Mutex(State())
    private let maxBatch: Int
    private let maxConcurrent: Int
    private let run: Run

    /// - Parameters:
    ///   - maxBatch: most requests in one call of `run`.
    ///   - maxConcurrent: most calls of `run` at once.
    init(maxBatch: Int, maxConcurrent: Int = 1, run: @escaping Run) {
        precondition(maxBatch >= 1 && maxConcurrent >= 1)
        self.maxBatch = maxBatch
        self.maxConcurrent = maxConcurrent
        self.run = run
    }

    /// Queues `request` and returns its answer once the batch it joined is applied.
    func submit(_ request: Request) async throws -> Response {
        try await withCheckedThrowingContinuation { continuation in
            let startBatch = state.withLock { state -> Bool in
                state.queue.append(Waiter(request: request, continuation: continuation))
                guard state.running < maxConcurrent else { return false }
                state.running += 1
                return true
            }
            if startBatch { Task { await self.drain() } }
        }
    }

    /// Batches applied so far.
    var statistics: GroupCommitStatistics { state.withLock { $0.statistics } }

    /// Applies queued batches until the queue is empty, then gives the slot back.
    private func drain() async {
        while true {
            let batch = state.withLock { state -> [Waiter] in
                guard !state.queue.isEmpty else {
                    state.running -= 1
                    return []
                }
                let count = min(maxBatch, state.queue.count)
                let batch = Array(state.queue.prefix(count))
                state.queue.removeFirst(count)
                state.statistics.batches += 1
                state.statistics.requests += count
                state.statistics.largestBatch = max(state.statistics.largestBatch, count)
                return batch
            }
            guard !batch.isEmpty else { return }
            let results = await run(batch.map(\.request))
            for (index, waiter) in batch.enumerated() {
                waiter.continuation.resume(
                    with: index < results.count ? results[index] : .failure(GroupCommitError.missingAnswer))
            }
        }
    }
}

/// `run` answered fewer requests than it was given (a bug in the batch function).
struct GroupCommitError: Error, CustomStringConvertible {
    static let missingAnswer = GroupCommitError()
    var description: String { "the batch returned no answer for this request" }
}

/// How well a group commit batches: requests per batch is the saving in transactions.
public struct GroupCommitStatistics: Hashable, Sendable {
    public var batches = 0
    public var requests = 0
    public var largestBatch = 0
}
