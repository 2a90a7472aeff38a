import Foundation
import OrchestratorApp
import OrchestratorDomain
import PostgresClient

/// `TaskDispatchStore` in PostgreSQL: claiming (`FOR NO KEY UPDATE SKIP LOCKED`), reports with fencing
/// (`+Report`), and lease bookkeeping (`+Leases`). The statements live in `DispatchSQL`.
public struct PostgresDispatchStore: TaskDispatchStore {
    let context: StoreContext

    public init(pool: PostgresPool, configuration: StoreConfiguration = StoreConfiguration()) {
        context = StoreContext(pool: pool, configuration: configuration)
    }

    public func claimTasks(_ request: ClaimRequest) async throws -> [ClaimedTask] {
        guard request.limit > 0 else { return [] }
        let configuration = context.configuration
        return try await context.transaction { transaction in
            let promoted = try await transaction.query(
                DispatchSQL.promoteDueRetries, [request.now.sqlTimestamp, configuration.agingBucket(request.now), 1000])
            if try promoted.first?.decode(Int.self, column: "promoted") ?? 0 > 0 {
                transaction.appendedEvents = true
            }
            let rows = try await transaction.query(
                DispatchSQL.claim,
                [
                    request.now.sqlTimestamp, request.executorID, request.capabilities.sorted(), request.tenants.map { $0.sorted() },
                    request.leaseTTLMillis, request.limit,
                ])
            guard !rows.isEmpty else { return [] }
            transaction.appendedEvents = true
            let tasks = try rows.map { try TaskRow.decode($0, decoder: transaction.decoder) }
            let results = try await upstreamResults(of: tasks, transaction: transaction)
            let inputs = try await workflowInputs(of: tasks, transaction: transaction)
            let expiry = request.now + request.leaseTTLMillis
            return tasks.map { task in
                ClaimedTask(
                    task: task, lease: LeaseToken(taskID: task.taskID, fencingToken: Int64(task.attempt)),
                    leaseExpiresAt: task.leaseExpiresAt ?? expiry, upstreamResults: results[task.taskID] ?? [:],
                    inputs: inputs[task.workflowID] ?? [:])
            }
        }
    }

    private func upstreamResults(of tasks: [StoredTask], transaction: StoreTransaction) async throws -> [String: [String: [UInt8]]] {
        let ids = tasks.compactMap { UUID(uuidString: $0.taskID) }
        let rows = try await transaction.query(DispatchSQL.upstreamResults, [ids])
        var results: [String: [String: [UInt8]]] = [:]
        for row in rows {
            let task = try row.decode(String.self, column: "downstream_task_id")
            results[task, default: [:]][try row.decode(String.self, column: "key")] = try row.decode([UInt8]?.self, column: "result") ?? []
        }
        return results
    }

    private func workflowInputs(of tasks: [StoredTask], transaction: StoreTransaction) async throws -> [String: [String: String]] {
        let ids = Array(Set(tasks.map(\.workflowID)))
        let rows = try await transaction.query(DispatchSQL.inputs, [ids])
        var inputs: [String: [String: String]] = [:]
        for row in rows {
            inputs[try row.decode(String.self, column: "workflow_id")] = try JSONColumn.decode(
                [String: String].self, from: try row.decode(PostgresJSON.self, column: "inputs"))
        }
        return inputs
    }
}

/// Retry delays: the task's policy, spread by its jitter fraction.
enum RetryDelay {
    /// - Parameters:
    ///   - attempt: the attempt that just failed (from 1).
    ///   - sample: a value in [0, 1); 0.5 means no spread.
    static func millis(spec: TaskSpec, afterAttempt attempt: Int, sample: Double) -> Int64 {
        let base = Double(spec.retry.backoff(afterAttempt: attempt))
        let jitter = min(max(spec.retryJitter, 0), 1)
        let factor = 1 + jitter * (2 * min(max(sample, 0), 1) - 1)
        return Int64(max(0, (base * factor).rounded()))
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
