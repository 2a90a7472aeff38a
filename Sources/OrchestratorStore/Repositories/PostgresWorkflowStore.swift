import Foundation
import OrchestratorApp
import OrchestratorDomain
import PostgresClient

/// `WorkflowStore` in PostgreSQL: workflows, their DAG versions and tasks.
///
/// Split by concern: creation (`+Create`), DAG updates (`+UpdateDag`), cancellation and reads
/// (`+Reads`). Every change appends its events in its own transaction.
public struct PostgresWorkflowStore: WorkflowStore {
    let context: StoreContext

    public init(pool: PostgresPool, configuration: StoreConfiguration = StoreConfiguration()) {
        context = StoreContext(pool: pool, configuration: configuration)
    }

    public func cancelWorkflow(id: String, tenant: String?, reason: String, actor: Actor, now: UnixMillis) async throws -> CancellationResult {
        let revoked = try await context.transaction { transaction -> [(lease: LeaseToken, executorID: String)] in
            let rows = try await transaction.query(
                "SELECT state, trace_id FROM workflows WHERE id = $1 AND ($2::text IS NULL OR tenant = $2) FOR NO KEY UPDATE",
                [id, tenant])
            guard let row = rows.first else { throw StoreError.notFound("workflow \(id)") }
            let state = WorkflowState(rawValue: try row.decode(String.self, column: "state")) ?? .running
            if state.isTerminal { throw StoreError.workflowFinished(id, state) }
            let traceID = try row.decode(String.self, column: "trace_id")
            let revoked = try await transaction.cancelUnfinished(
                workflowID: id, traceID: traceID, message: reason, actor: actor, now: now)
            try await transaction.setWorkflowFinished(id, state: .cancelled, error: reason, traceID: traceID, actor: actor, now: now)
            return revoked
        }
        // Read for the answer only.
        guard let record = try await workflow(id: id, tenant: tenant, queryGraph: .answered) else {
            throw StoreError.notFound("workflow \(id)")
        }
        return CancellationResult(workflow: record, revokedLeases: revoked)
    }
}
