import OrchestratorApp
import PostgresClient

/// Retention: deleting finished workflows, oldest first (`RetentionService` decides when).
extension PostgresWorkflowStore: RetentionStore {
    /// One pass deletes the tasks and events of at most about this many rows' worth of workflows
    /// (the first workflow always goes, however large): a pass is one transaction, and its row
    /// locks and WAL grow with the rows it deletes. Events count: each progress report is one, and
    /// a budget of tasks alone let a pass take millions of them.
    static let pruneRowBudget = 50_000

    public func pruneFinishedWorkflows(finishedBefore: UnixMillis, limit: Int) async throws -> PrunedWorkflows {
        try await pruneFinishedWorkflows(finishedBefore: finishedBefore, limit: limit, rowBudget: Self.pruneRowBudget)
    }

    func pruneFinishedWorkflows(finishedBefore: UnixMillis, limit: Int, rowBudget: Int) async throws -> PrunedWorkflows {
        // No statement timeout: a role's timeout shorter than the oldest workflow's pass would stop
        // every pass at that workflow, and retention with it.
        let row = try await context.transaction(settings: [PostgresSetting("statement_timeout", "0")]) { transaction in
            try await transaction.query(Self.pruneSQL, [finishedBefore.sqlTimestamp, max(limit, 1), max(rowBudget, 1)]).first
        }
        guard let row else { return PrunedWorkflows() }
        return PrunedWorkflows(
            workflows: Int(try row.decode(Int64.self, column: "workflows")), tasks: Int(try row.decode(Int64.self, column: "tasks")),
            events: Int(try row.decode(Int64.self, column: "events")))
    }

    /// workflows_finished_idx (migration 0017) finds the oldest finished workflows; each one's task
    /// count comes from its current DAG version and its events are counted from
    /// workflow_events_workflow_seq_idx, at most `$3` each, so the pass stops at about `$3` rows. `SKIP LOCKED`: a workflow some other transaction holds (a late UpdateDag or cancel
    /// about to be refused, another server's pass) is left for the next pass, and two servers
    /// pruning at once never wait on each other. A workflow with an unfinished task (none should
    /// have one once finished) is never taken. Every table is keyed by workflow or task id, so each
    /// delete is an index probe per row: task_attempts by task, edges by their upstream task (an
    /// edge joins two tasks of one workflow), events by workflow_events_workflow_seq_idx.
    static let pruneSQL = """
        WITH candidates AS (
            SELECT w.id, w.finished_at,
                   coalesce(v.task_count, 0)
                     + (SELECT count(*) FROM (SELECT 1 FROM workflow_events e WHERE e.workflow_id = w.id LIMIT $3) n) AS row_count
              FROM workflows w
              LEFT JOIN dag_versions v ON v.workflow_id = w.id AND v.version = w.current_dag_version
             WHERE w.state IN ('succeeded', 'failed', 'cancelled') AND w.finished_at < $1
               AND NOT EXISTS (SELECT 1 FROM tasks u WHERE u.workflow_id = w.id
                                  AND u.state IN ('pending', 'ready', 'retry_wait', 'leased', 'running'))
             ORDER BY w.finished_at, w.id
             LIMIT $2
               FOR UPDATE OF w SKIP LOCKED
        ), doomed AS (
            SELECT id FROM (
                SELECT id, row_count, sum(row_count) OVER (ORDER BY finished_at, id) AS through FROM candidates
            ) c
             WHERE through - row_count < $3
        ), gone_tasks AS (
            DELETE FROM tasks t USING doomed d WHERE t.workflow_id = d.id RETURNING t.id
        ), gone_attempts AS (
            DELETE FROM task_attempts a USING gone_tasks g WHERE a.task_id = g.id
        ), gone_edges AS (
            DELETE FROM edges e USING gone_tasks g WHERE e.upstream_task_id = g.id
        ), gone_events AS (
            DELETE FROM workflow_events v USING doomed d WHERE v.workflow_id = d.id RETURNING 1
        ), gone_versions AS (
            DELETE FROM dag_versions v USING doomed d WHERE v.workflow_id = d.id
        ), gone_queries AS (
            DELETE FROM queries q USING doomed d WHERE q.workflow_id = d.id
        ), gone AS (
            DELETE FROM workflows w USING doomed d WHERE w.id = d.id RETURNING 1
        )
        SELECT (SELECT count(*) FROM gone)::int8 AS workflows, (SELECT count(*) FROM gone_tasks)::int8 AS tasks,
               (SELECT count(*) FROM gone_events)::int8 AS events
        """
}

extension PostgresStore: RetentionStore {
    public func pruneFinishedWorkflows(finishedBefore: UnixMillis, limit: Int) async throws -> PrunedWorkflows {
        try await workflows.pruneFinishedWorkflows(finishedBefore: finishedBefore, limit: limit)
    }
}
