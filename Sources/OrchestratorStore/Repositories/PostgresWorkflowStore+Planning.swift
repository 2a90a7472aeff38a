import Foundation
import OrchestratorApp
import OrchestratorDomain
import PostgresClient

/// Delegated planning's storage: a PLANNING workflow's planning task and its adoption sweep.
/// The adoption itself is `updateDag` with `completesPlanning`.
extension PostgresWorkflowStore: PlanningStore {
    public func planningTask(id: String) async throws -> PlanningTask? {
        guard let taskID = UUID(uuidString: id) else { return nil }
        // tasks primary key, then workflows primary key.
        let rows = try await context.read { session in
            try await session.query(
                """
                SELECT t.id, t.workflow_id, w.tenant, t.key, t.state, t.result
                  FROM tasks t JOIN workflows w ON w.id = t.workflow_id
                 WHERE t.id = $1 AND w.state = 'planning'
                """, [taskID])
        }
        return try rows.first.map(Self.planningTask)
    }

    public func plansAwaitingAdoption(finishedBefore: UnixMillis, limit: Int) async throws -> [PlanningTask] {
        // workflows_active_idx (state, updated_at) finds the PLANNING workflows; tasks_workflow_unfinished_idx
        // answers "nothing left to run" with an index probe each.
        let rows = try await context.read { session in
            try await session.query(
                """
                SELECT t.id, t.workflow_id, w.tenant, t.key, t.state, t.result
                  FROM workflows w JOIN tasks t ON t.workflow_id = w.id
                 WHERE w.state = 'planning' AND t.state = 'succeeded' AND t.finished_at < $1
                   AND NOT EXISTS (SELECT 1 FROM tasks u WHERE u.workflow_id = w.id
                                      AND u.state IN ('pending', 'ready', 'retry_wait', 'leased', 'running'))
                 ORDER BY w.updated_at, w.id
                 LIMIT $2
                """, [finishedBefore.sqlTimestamp, max(limit, 1)])
        }
        return try rows.map(Self.planningTask)
    }

    public func failPlanning(workflowID: String, message: String, now: UnixMillis) async throws {
        try await context.transaction { transaction in
            guard let locked = try await transaction.lockWorkflow(workflowID, now: now), locked.state == .planning else { return }
            try await transaction.setWorkflowFinished(
                workflowID, state: .failed, error: message, traceID: locked.traceID, actor: nil, now: now)
        }
    }

    private static func planningTask(_ row: PostgresRow) throws -> PlanningTask {
        PlanningTask(
            workflowID: try row.decode(String.self, column: "workflow_id"), tenant: try row.decode(String.self, column: "tenant"),
            taskID: try row.decode(UUID.self, column: "id").uuidString.lowercased(),
            key: TaskKey(try row.decode(String.self, column: "key")),
            state: try TaskStateColumn.decode(try row.decode(String.self, column: "state")),
            result: try row.decode([UInt8]?.self, column: "result"))
    }
}

extension PostgresStore: PlanningStore {
    public func planningTask(id: String) async throws -> PlanningTask? { try await workflows.planningTask(id: id) }
    public func plansAwaitingAdoption(finishedBefore: UnixMillis, limit: Int) async throws -> [PlanningTask] {
        try await workflows.plansAwaitingAdoption(finishedBefore: finishedBefore, limit: limit)
    }
    public func failPlanning(workflowID: String, message: String, now: UnixMillis) async throws {
        try await workflows.failPlanning(workflowID: workflowID, message: message, now: now)
    }
}
