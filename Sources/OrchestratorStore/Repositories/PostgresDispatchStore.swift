import Foundation
import OrchestratorApp
import OrchestratorDomain
import PostgresClient

/// `TaskDispatchStore` in PostgreSQL: claiming (`FOR NO KEY UPDATE SKIP LOCKED`), reports with fencing
/// (`+Report`), and lease bookkeeping (`+Leases`). The statements live in `DispatchSQL`.
///
/// Claims and completions go through group commit (`GroupCommit`): concurrent callers' requests
/// are applied together, one transaction per batch (`+ClaimBatch`, `+CompletionBatch`), so the
/// per-transaction costs — round trips, the commit, the workflow lock, the NOTIFY — are paid once
/// per batch. Progress and failure reports, rare next to completions, run one transaction each.
public struct PostgresDispatchStore: TaskDispatchStore {
    let context: StoreContext
    /// Nil in the copy the batches themselves run on (which applies requests directly).
    private let batches: DispatchBatches?

    public init(pool: PostgresPool, configuration: StoreConfiguration = StoreConfiguration()) {
        let direct = PostgresDispatchStore(context: StoreContext(pool: pool, configuration: configuration))
        context = direct.context
        // A batch's transaction runs with the audit cause its requests share (nil when they differ:
        // each request's own events still carry its cause, bound per row). Two batches of a kind may
        // run at once, so the next one is being applied while the previous one commits; claims
        // skip each other's rows, completions of one workflow meet only at its row lock, last.
        batches = DispatchBatches(
            claims: GroupCommit(maxBatch: configuration.claimBatchLimit, maxConcurrent: configuration.concurrentBatches) { batch in
                await AuditCause.$current.withValue(Caused.common(batch)) { await direct.claimBatch(batch) }
            },
            completions: GroupCommit(maxBatch: configuration.completionBatchLimit, maxConcurrent: configuration.concurrentBatches) { batch in
                await AuditCause.$current.withValue(Caused.common(batch)) { await direct.completeBatch(batch) }
            })
    }

    private init(context: StoreContext) {
        self.context = context
        batches = nil
    }

    /// How claims and completions were batched so far (zero when batching is off).
    public var batchStatistics: (claims: GroupCommitStatistics, completions: GroupCommitStatistics) {
        (batches?.claims.statistics ?? GroupCommitStatistics(), batches?.completions.statistics ?? GroupCommitStatistics())
    }

    public func claimTasks(_ request: ClaimRequest) async throws -> [ClaimedTask] {
        guard request.limit > 0 else { return [] }
        let caused = Caused(value: request, cause: AuditCause.current)
        if let batches { return try await batches.claims.submit(caused) }
        return try await claimBatch([caused])[0].get()
    }

    public func report(_ report: TaskReport) async throws -> ReportResult {
        if case .completed = report.outcome, let batches {
            return try await batches.completions.submit(Caused(value: report, cause: AuditCause.current))
        }
        return try await reportAlone(report)
    }
}

/// The two group commits of one dispatch store.
final class DispatchBatches: Sendable {
    let claims: GroupCommit<Caused<ClaimRequest>, [ClaimedTask]>
    let completions: GroupCommit<Caused<TaskReport>, ReportResult>

    init(claims: GroupCommit<Caused<ClaimRequest>, [ClaimedTask]>, completions: GroupCommit<Caused<TaskReport>, ReportResult>) {
        self.claims = claims
        self.completions = completions
    }
}

/// A batched request with the audit cause of the call that made it (`AuditCause.current` is a
/// task-local value, and a batch runs in another task than its callers).
struct Caused<Value: Sendable>: Sendable {
    var value: Value
    var cause: AuditCause?

    /// The cause every request of the batch shares, nil when they differ.
    static func common(_ batch: [Caused]) -> AuditCause? {
        guard let first = batch.first?.cause else { return nil }
        return batch.allSatisfy { $0.cause == first } ? first : nil
    }

    /// Each request's cause as the two event columns: actor (jsonb text) and request trace id.
    static func columns(_ causes: [AuditCause?]) throws -> (actors: [String?], traces: [String?]) {
        (try causes.map { try $0.map { try ActorJSON.text($0.actor) } }, causes.map { $0?.traceID })
    }
}

/// Retry delays: the task's policy, spread by its jitter fraction.
enum RetryDelay {
    /// - Parameters:
    ///   - attempt: the attempt that just failed (from 1).
    ///   - sample: a value in [0, 1); 0.5 means no spread.
    static func millis(spec: TaskSpec, afterAttempt attempt: Int, sample: Double) -> Int64 {
        let base = Double(spec.retry.backoff(afterAttempt: attempt))
        let jitter = spec.retryJitter.isFinite ? min(max(spec.retryJitter, 0), 1) : 0
        let spread = sample.isFinite ? min(max(sample, 0), 1) : 0.5
        let factor = 1 + jitter * (2 * spread - 1)
        // base ≤ RetryPolicy.longestBackoffMillis and factor ≤ 2: far inside Int64. The cap holds
        // after the spread too, as `max_backoff_ms` promises ("upper bound for any single delay");
        // with a 2 s cap and ±50 % the delays were 1.0 to 2.8 s (found by black-box testing).
        return Int64(min(max(0, (base * factor).rounded()), Double(spec.retry.maxBackoffMillis)))
    }

    /// A deterministic sample for retries that carry none (lease expiry): spreads requeues of the
    /// many leases of one dead executor, and stays reproducible in tests.
    static func sample(taskID: String, attempt: Int) -> Double {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in taskID.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        hash ^= UInt64(truncatingIfNeeded: attempt) &* 0x9e37_79b9_7f4a_7c15
        hash ^= hash >> 33
        return Double(hash % 1_000_000) / 1_000_000
    }
}
