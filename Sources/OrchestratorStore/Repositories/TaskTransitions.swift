import Foundation
import OrchestratorApp
import OrchestratorDomain
import PostgresClient

/// Multi-task consequences shared by reports, lease expiry, DAG updates and cancellation. Each runs
/// inside the caller's transaction and generates its events in SQL next to the update.
extension StoreTransaction {
    /// Decrements the children of a task that just succeeded; children reaching zero become ready
    /// (task_ready events). Served by the edges primary key (upstream_task_id, downstream_task_id).
    /// - Returns: how many children became ready.
    func releaseChildren(of taskID: UUID, workflowID: String, traceID: String, now: UnixMillis) async throws -> Int {
        let rows = try await query(
            """
            WITH children AS (
                UPDATE tasks c
                   SET unfinished_upstream = c.unfinished_upstream - 1,
                       state = CASE WHEN c.unfinished_upstream = 1 AND c.state = 'pending' THEN 'ready' ELSE c.state END,
                       ready_at = CASE WHEN c.unfinished_upstream = 1 AND c.state = 'pending' THEN $2 ELSE c.ready_at END,
                       dispatch_priority = CASE WHEN c.unfinished_upstream = 1 AND c.state = 'pending'
                                                THEN c.priority - $3 ELSE c.dispatch_priority END,
                       updated_at = $2
                  FROM edges e
                 WHERE e.upstream_task_id = $1 AND c.id = e.downstream_task_id
             RETURNING c.id, c.key, c.state, c.unfinished_upstream
            ), events AS (
                INSERT INTO workflow_events (workflow_id, type, at, task_id, task_key, task_state, trace_id, actor, request_trace_id)
                SELECT $4, 'task_ready', $2, id, key, 'ready', $5, $6::jsonb, $7
                  FROM children WHERE state = 'ready' AND unfinished_upstream = 0
                RETURNING 1
            )
            SELECT count(*) AS readied FROM events
            """,
            [taskID, now.sqlTimestamp, configuration.agingBucket(now), workflowID, traceID, causeActor, causeTraceID])
        let readied = try rows.first?.decode(Int.self, column: "readied") ?? 0
        if readied > 0 {
            readiedTasks = true
            appendedEvents = true
        }
        return readied
    }

    /// Skips every task downstream of `taskID`, transitively, that has not started
    /// (continue_independent). Returns how many were skipped.
    func skipDownstream(of taskID: UUID, workflowID: String, traceID: String, now: UnixMillis) async throws -> Int {
        let rows = try await query(
            """
            WITH RECURSIVE downstream(id) AS (
                SELECT e.downstream_task_id FROM edges e WHERE e.upstream_task_id = $1
                UNION
                SELECT e.downstream_task_id FROM edges e JOIN downstream d ON e.upstream_task_id = d.id
            ), skipped AS (
                UPDATE tasks t
                   SET state = 'skipped', next_attempt_at = NULL, finished_at = $2, updated_at = $2
                  FROM downstream d
                 WHERE t.id = d.id AND t.state IN ('pending', 'ready', 'retry_wait')
             RETURNING t.id, t.key, t.attempt
            ), events AS (
                INSERT INTO workflow_events (workflow_id, type, at, task_id, task_key, task_state, attempt, message, trace_id,
                                             actor, request_trace_id)
                SELECT $3, 'task_skipped', $2, id, key, 'skipped', attempt, 'an upstream task failed', $4, $5::jsonb, $6 FROM skipped
                RETURNING 1
            )
            SELECT count(*) AS skipped FROM events
            """,
            [taskID, now.sqlTimestamp, workflowID, traceID, causeActor, causeTraceID])
        let skipped = try rows.first?.decode(Int.self, column: "skipped") ?? 0
        if skipped > 0 { appendedEvents = true }
        return skipped
    }

    /// Cancels every unfinished task of a workflow, revoking leases (their holders' next report or
    /// heartbeat is stale). Served by tasks_workflow_unfinished_idx.
    /// - Returns: the revoked leases with their holders.
    func cancelUnfinished(
        workflowID: String, traceID: String, message: String, actor: Actor?, now: UnixMillis
    ) async throws -> [(lease: LeaseToken, executorID: String)] {
        // The locks first, in a statement of their own. A claim committing while the statement
        // below waited for a task's lock had inserted that task's new attempt after the
        // statement's snapshot: the `attempts` step could not see it, and the attempt stayed
        // "running" forever under a cancelled task, started after it finished (found by black-box
        // testing). Under READ COMMITTED the next statement's snapshot has every such attempt, and
        // nothing can change these tasks in between.
        _ = try await query(
            """
            SELECT id FROM tasks
             WHERE workflow_id = $1 AND state IN \(TaskStateColumn.unfinishedSQL)
             ORDER BY id
               FOR NO KEY UPDATE
            """,
            [workflowID])
        let rows = try await query(
            """
            WITH old AS (
                SELECT id, state, lease_owner, fencing_token FROM tasks
                 WHERE workflow_id = $1 AND state IN \(TaskStateColumn.unfinishedSQL)
                 ORDER BY id
                   FOR NO KEY UPDATE
            ), cancelled AS (
                UPDATE tasks t
                   SET state = 'cancelled', lease_owner = NULL, lease_expires_at = NULL, next_attempt_at = NULL,
                       finished_at = $2, updated_at = $2,
                       -- The attempt that was running ends with the cancellation as its error (it
                       -- was left empty; TaskError.source names "cancelled" for this).
                       last_error = CASE WHEN old.lease_owner IS NOT NULL
                                         THEN jsonb_build_object('message', $3::text, 'code', 'cancelled', 'retryable', false,
                                                                 'attempt', t.attempt, 'source', 'cancelled')
                                         ELSE t.last_error END
                  FROM old
                 WHERE t.id = old.id
             RETURNING t.id, t.key, t.attempt, old.lease_owner AS old_owner, old.fencing_token AS token
            ), attempts AS (
                UPDATE task_attempts a SET outcome = 'revoked', finished_at = $2
                  FROM cancelled c
                 WHERE a.task_id = c.id AND a.attempt = c.attempt AND c.old_owner IS NOT NULL AND a.outcome = 'running'
            ), events AS (
                INSERT INTO workflow_events (workflow_id, type, at, task_id, task_key, task_state, attempt, executor_id,
                                             message, trace_id, actor, request_trace_id)
                SELECT $1, 'task_cancelled', $2, id, key, 'cancelled', attempt, old_owner, $3, $4, $5::jsonb, $6 FROM cancelled
            )
            SELECT id, token, old_owner FROM cancelled
            """,
            [workflowID, now.sqlTimestamp, message, traceID, try actor.map(ActorJSON.text) ?? causeActor, causeTraceID])
        if !rows.isEmpty { appendedEvents = true }
        var revoked: [(lease: LeaseToken, executorID: String)] = []
        for row in rows {
            guard let owner = try row.decode(String?.self, column: "old_owner") else { continue }
            revoked.append((LeaseToken(taskID: try row.decode(String.self, column: "id"), fencingToken: try row.decode(Int64.self, column: "token")), owner))
        }
        return revoked
    }

    /// Locks the workflow row. Every transaction that may finish a workflow takes this lock last
    /// (after its task updates), so of two transactions finishing the last two tasks the second
    /// sees the first's commit and finishes the workflow. Returns nil when the workflow is gone.
    ///
    /// `FOR NO KEY UPDATE`, never `FOR UPDATE`, here and on task rows: inserting an event or an
    /// attempt takes a KEY SHARE lock on the referenced row (foreign key), which FOR UPDATE
    /// conflicts with — two reports that each appended events and then wanted the workflow row
    /// deadlocked. NO KEY UPDATE still excludes other NO KEY UPDATE lockers.
    func lockWorkflow(_ workflowID: String, now: UnixMillis) async throws -> (state: WorkflowState, traceID: String, policy: FailurePolicy)? {
        let rows = try await query(
            "SELECT state, trace_id, failure_policy FROM workflows WHERE id = $1 FOR NO KEY UPDATE", [workflowID])
        guard let row = rows.first else { return nil }
        return (
            WorkflowState(rawValue: try row.decode(String.self, column: "state")) ?? .running,
            try row.decode(String.self, column: "trace_id"),
            FailurePolicy(rawValue: try row.decode(String.self, column: "failure_policy")) ?? .failFast
        )
    }

    /// Finishes the workflow when none of its tasks is unfinished: succeeded when every task
    /// succeeded, failed otherwise. Takes the workflow lock first (see `lockWorkflow`).
    /// - Returns: the workflow's new state when this call finished it.
    func finishWorkflowIfDone(_ workflowID: String, now: UnixMillis) async throws -> WorkflowState? {
        guard let locked = try await lockWorkflow(workflowID, now: now), !locked.state.isTerminal else { return nil }
        // A new statement after the lock: its snapshot includes every commit that held the lock before.
        // Served by tasks_workflow_unfinished_idx (an index probe, however big the workflow).
        let busy = try await query(
            "SELECT EXISTS (SELECT 1 FROM tasks WHERE workflow_id = $1 AND state IN \(TaskStateColumn.unfinishedSQL)) AS busy",
            [workflowID])
        if try busy.first?.decode(Bool.self, column: "busy") ?? true { return nil }
        return try await finishDoneWorkflow(workflowID, locked: locked, now: now)
    }

    /// Of the rows of `DispatchSQL.workflowsOfTasksWithoutUnfinished`, the workflows among
    /// `locked` (locked by this transaction in the statement that finished their tasks,
    /// `DispatchSQL.completeHeld`) that are not finished yet — the batch form of
    /// `finishWorkflowIfDone`'s probe: one statement for them all.
    static func lockedWorkflowsWithoutUnfinished(_ rows: PostgresRows, among locked: Set<String>) throws -> [LockedWorkflow] {
        var done: [LockedWorkflow] = []
        for row in rows {
            let id = try row.decode(String.self, column: "id")
            let state = WorkflowState(rawValue: try row.decode(String.self, column: "state")) ?? .running
            guard locked.contains(id), !state.isTerminal else { continue }
            done.append(LockedWorkflow(
                id: id, state: state, traceID: try row.decode(String.self, column: "trace_id"),
                policy: FailurePolicy(rawValue: try row.decode(String.self, column: "failure_policy")) ?? .failFast))
        }
        return done
    }

    /// Finishes the workflows `lockedWorkflowsWithoutUnfinished` found done.
    /// - Returns: the new state of each workflow finished.
    func finish(_ workflows: [LockedWorkflow], now: UnixMillis) async throws -> [String: WorkflowState] {
        var finished: [String: WorkflowState] = [:]
        for workflow in workflows {
            let locked = (state: workflow.state, traceID: workflow.traceID, policy: workflow.policy)
            if let state = try await finishDoneWorkflow(workflow.id, locked: locked, now: now) { finished[workflow.id] = state }
        }
        return finished
    }

    /// A finished workflow's error, from the first task that did not succeed.
    static func outcomeError(key: String, state: String?, message: String?) -> String {
        switch state {
        case "failed": message.map { $0.isEmpty ? "task \(key) failed" : "task \(key) failed: \($0)" } ?? "task \(key) failed"
        case "cancelled": "task \(key) was cancelled"
        case "skipped": "task \(key) was skipped: one of its upstream tasks did not succeed"
        default: "task \(key) did not succeed"
        }
    }

    /// Finishes a locked workflow that has no unfinished task: succeeded when every task
    /// succeeded, failed otherwise (a PLANNING workflow whose planning task succeeded stays open).
    private func finishDoneWorkflow(
        _ workflowID: String, locked: (state: WorkflowState, traceID: String, policy: FailurePolicy), now: UnixMillis
    ) async throws -> WorkflowState? {
        // The first task that did not succeed, failed ones first, with why: the error said only
        // "task x did not succeed", dropping the executor's message (found by black-box testing).
        let failed = try await query(
            """
            SELECT key AS failed_key, state::text AS failed_state, last_error ->> 'message' AS failed_message,
                   last_error ->> 'source' AS failed_source
              FROM tasks WHERE workflow_id = $1 AND state IN ('failed', 'cancelled', 'skipped')
             ORDER BY (state = 'failed') DESC, finished_at LIMIT 1
            """, [workflowID])
        let failedKey = try failed.first?.decode(String?.self, column: "failed_key")
        let failedState = try failed.first?.decode(String?.self, column: "failed_state")
        var failedMessage = try failed.first?.decode(String?.self, column: "failed_message")
        // A last attempt lost with its lease says so, as fail_fast's error does (settleLostLeases):
        // the task's own error is that attempt's, which does not know it was the last.
        let failedSource = try failed.first?.decode(String?.self, column: "failed_source")
            .flatMap(TaskFailureInfo.Source.init(rawValue:))
        let lostWithItsLease: Set<TaskFailureInfo.Source> = [.leaseExpired, .timeout, .released]
        if failedState == "failed", let source = failedSource, lostWithItsLease.contains(source), let message = failedMessage {
            failedMessage = message + "; attempts exhausted"
        }
        // A PLANNING workflow whose planning task succeeded is not done: the graph it proposed is
        // about to be adopted as the next version (PlanAdoptionService), in its own transaction.
        if failedKey == nil && locked.state == .planning { return nil }
        let state: WorkflowState = failedKey == nil ? .succeeded : .failed
        try await setWorkflowFinished(
            workflowID, state: state, error: failedKey.map { Self.outcomeError(key: $0, state: failedState, message: failedMessage) },
            traceID: locked.traceID, actor: nil,
            now: now)
        return state
    }

    /// Marks the (locked) workflow finished and appends its terminal event.
    func setWorkflowFinished(
        _ workflowID: String, state: WorkflowState, error: String?, traceID: String, actor: Actor?, now: UnixMillis
    ) async throws {
        try await query(
            "UPDATE workflows SET state = $2, error = $3, finished_at = $4, updated_at = $4 WHERE id = $1",
            [workflowID, state.rawValue, error, now.sqlTimestamp])
        let kind: EventKind =
            switch state {
            case .succeeded: .workflowSucceeded
            case .cancelled: .workflowCancelled
            default: .workflowFailed
            }
        try append([
            EventDraft(
                workflowID: workflowID, kind: kind, at: now, workflowState: state, message: error ?? "", traceID: traceID,
                actor: actor)
        ])
    }

    /// Takes, before the transaction appends its first event, every row lock that failing a task
    /// of these workflows for good will wait for: the workflows, then the unfinished tasks of the
    /// fail_fast ones, each in id order (the order completion batches and cancellations take them).
    /// Appending an event holds the event-order lock to commit (migration 0006), and a claim
    /// appends its task_leased events while it holds the tasks it leased: a fail_fast
    /// cancellation that first appended task_failed and then waited for those tasks deadlocked
    /// with the claim (2 to 4 deadlocks per failure under load, the workflow failed 2.1 s late).
    /// One round trip; the tasks statement, after the workflow locks, sees their latest state.
    func lockForFailurePolicy(workflowIDs: [String]) async throws {
        guard !workflowIDs.isEmpty else { return }
        _ = try await queries([
            PostgresStatement(
                "SELECT id FROM workflows WHERE id = ANY($1::text[]) ORDER BY id FOR NO KEY UPDATE", [workflowIDs]),
            PostgresStatement(Self.lockUnfinishedOfFailFast, [workflowIDs]),
        ])
    }

    /// The unfinished tasks of those of the workflows ($1) that fail fast, locked in id order.
    /// Index: tasks_workflow_unfinished_idx (one probe per workflow).
    static let lockUnfinishedOfFailFast = """
        SELECT t.id FROM tasks t
         WHERE t.workflow_id = ANY (ARRAY(SELECT id FROM workflows WHERE id = ANY($1::text[]) AND failure_policy = 'fail_fast'))
           AND t.state IN \(TaskStateColumn.unfinishedSQL)
         ORDER BY t.id
           FOR NO KEY UPDATE OF t
        """

    /// A task of the workflow failed for good: applies the failure policy.
    /// - Parameter reason: why its last attempt failed; a fail_fast workflow's error names it.
    /// - Returns: the workflow's new state when it finished.
    func applyFailurePolicy(
        workflowID: String, failedTaskID: UUID, failedKey: String, reason: String, traceID: String, now: UnixMillis
    ) async throws -> WorkflowState? {
        guard let locked = try await lockWorkflow(workflowID, now: now), !locked.state.isTerminal else { return nil }
        switch locked.policy {
        case .failFast:
            _ = try await cancelUnfinished(
                workflowID: workflowID, traceID: traceID, message: "task \(failedKey) failed (fail_fast)", actor: nil, now: now)
            try await setWorkflowFinished(
                workflowID, state: .failed, error: Self.workflowError(failedKey: failedKey, reason: reason), traceID: traceID,
                actor: nil, now: now)
            return .failed
        case .continueIndependent:
            _ = try await skipDownstream(of: failedTaskID, workflowID: workflowID, traceID: traceID, now: now)
            return try await finishWorkflowIfDone(workflowID, now: now)
        }
    }
}

extension StoreTransaction {
    /// A fail_fast workflow's error: the task, and why it failed (cut to 500 characters; the
    /// task's own `last_error` keeps the whole message). "task up failed" alone sent operators to
    /// the task to learn that its last attempt was lost with its executor's stream (found by
    /// black-box testing).
    static func workflowError(failedKey: String, reason: String) -> String {
        let trimmed = reason.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty else { return "task \(failedKey) failed" }
        let cut = trimmed.count > 500 ? String(trimmed.prefix(500)) + "…" : trimmed
        return "task \(failedKey) failed: \(cut)"
    }
}

/// A workflow row this transaction holds locked, as read.
struct LockedWorkflow {
    var id: String
    var state: WorkflowState
    var traceID: String
    var policy: FailurePolicy
}
