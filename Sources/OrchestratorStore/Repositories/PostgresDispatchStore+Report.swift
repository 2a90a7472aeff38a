import Foundation
import OrchestratorApp
import OrchestratorDomain
import PostgresClient

extension PostgresDispatchStore {
    /// Applies one report in its own transaction: progress and failures always, completions when
    /// a batch had to be split (see `completeBatch`).
    func reportAlone(_ report: TaskReport) async throws -> ReportResult {
        guard let taskID = UUID(uuidString: report.lease.taskID) else { return .unknownTask }
        return try await context.transaction { transaction in
            switch report.outcome {
            case .progress:
                // Progress touches its task alone: no workflow lock.
                break
            case .completed:
                // The workflow first, as a completion batch and UpdateDag take it: the children
                // released below then see the latest graph.
                try await transaction.query(DispatchSQL.lockWorkflowsOfTasks, [[taskID]])
            case .failed(_, _, let retryable):
                // The workflow first too, then — when this is the task's last attempt and the
                // workflow fails fast — the tasks the cancellation will take, before any event
                // is appended (`lockForFailurePolicy` says why).
                _ = try await transaction.queries([
                    PostgresStatement(DispatchSQL.lockWorkflowsOfTasks, [[taskID]]),
                    PostgresStatement(DispatchSQL.lockUnfinishedBeforeLastFailure, [taskID, report.lease.fencingToken, retryable]),
                ])
            }
            if case .completed(let result) = report.outcome,
                let accepted = try await completeIfHeld(taskID, result: result, report: report, transaction: transaction)
            {
                return accepted
            }
            // The task row lock orders this report against claims, heartbeats, other reports and
            // the reaper; the fencing check below then sees the task's latest state.
            let rows = try await transaction.query(
                """
                SELECT t.workflow_id, t.key, t.state, t.fencing_token, t.attempt, t.max_attempts, t.lease_owner, t.metadata,
                       w.trace_id, w.tenant
                  FROM tasks t JOIN workflows w ON w.id = t.workflow_id
                 WHERE t.id = $1
                   FOR NO KEY UPDATE OF t
                """, [taskID])
            guard let row = rows.first else { return .unknownTask }
            let stateText = try row.decode(String.self, column: "state")
            let token = try row.decode(Int64.self, column: "fencing_token")
            let owner = try row.decode(String?.self, column: "lease_owner")
            guard stateText == "leased" || stateText == "running", token == report.lease.fencingToken,
                owner?.hasSameBytes(as: report.executorID) == true
            else {
                if case .completed = report.outcome, stateText == "succeeded", token == report.lease.fencingToken,
                    let refused = try await transaction.query(DispatchSQL.taskStates, [[taskID]]).first
                {
                    return try RefusedTask(refused).answer(to: report)
                }
                return .staleLease(
                    currentToken: token, state: try TaskStateColumn.decode(stateText), tenant: try row.decode(String.self, column: "tenant"))
            }
            let task = ReportedTask(
                id: taskID, workflowID: try row.decode(String.self, column: "workflow_id"), key: try row.decode(String.self, column: "key"),
                wasRunning: stateText == "running", attempt: try row.decode(Int.self, column: "attempt"),
                maxAttempts: try row.decode(Int.self, column: "max_attempts"), traceID: try row.decode(String.self, column: "trace_id"),
                metadata: try row.decode(PostgresJSON.self, column: "metadata"))
            switch report.outcome {
            case .progress(let fraction, let message):
                return try await progress(task, fraction: fraction, message: message, report: report, transaction: transaction)
            case .completed(let result):
                return try await complete(task, result: result, report: report, transaction: transaction)
            case .failed(let message, let code, let retryable):
                let failure = TaskFailureInfo(message: message, code: code, retryable: retryable, attempt: task.attempt, source: report.failureSource)
                return try await fail(task, failure: failure, report: report, transaction: transaction)
            }
        }
    }

    struct ReportedTask {
        var id: UUID
        var workflowID: String
        var key: String
        var wasRunning: Bool
        var attempt: Int
        var maxAttempts: Int
        var traceID: String
        var metadata: PostgresJSON
    }

    private func progress(_ task: ReportedTask, fraction: Double, message: String, report: TaskReport, transaction: StoreTransaction) async throws -> ReportResult {
        var events: [EventDraft] = []
        if !task.wasRunning {
            try await transaction.query(
                "UPDATE tasks SET state = 'running', started_at = coalesce(started_at, $2), updated_at = $2 WHERE id = $1",
                [task.id, report.now.sqlTimestamp])
            events.append(EventDraft(
                workflowID: task.workflowID, kind: .taskRunning, at: report.now, taskID: task.id.uuidString.lowercased(), taskKey: task.key,
                taskState: "running", attempt: task.attempt, executorID: report.executorID, traceID: task.traceID))
        }
        try await transaction.query(
            "UPDATE task_attempts SET last_heartbeat_at = $3 WHERE task_id = $1 AND attempt = $2",
            [task.id, task.attempt, report.now.sqlTimestamp])
        events.append(EventDraft(
            workflowID: task.workflowID, kind: .taskProgress, at: report.now, taskID: task.id.uuidString.lowercased(), taskKey: task.key,
            taskState: "running", attempt: task.attempt, executorID: report.executorID, message: message,
            progress: fraction.isNaN ? 0 : min(max(fraction, 0), 1), traceID: task.traceID))
        try transaction.append(events)
        return .accepted(taskState: .running, workflowState: nil)
    }

    /// The hot path of a completion: the fencing check is the UPDATE's own condition (tasks_pkey;
    /// the row lock it takes orders it against every other writer of the task), and the attempt
    /// and event ride in the same statement. Returns nil when the lease is not held; the caller then
    /// reads the task to answer stale or unknown.
    private func completeIfHeld(_ taskID: UUID, result: [UInt8], report: TaskReport, transaction: StoreTransaction) async throws -> ReportResult? {
        let rows = try await transaction.query(
            """
            WITH done AS (
                UPDATE tasks
                   SET state = 'succeeded', result = $2, lease_owner = NULL, lease_expires_at = NULL, finished_at = $3, updated_at = $3
                 WHERE id = $1 AND fencing_token = $4 AND lease_owner = $5 AND state IN ('leased', 'running')
             RETURNING id, key, workflow_id, attempt
            ), attempt AS (
                UPDATE task_attempts a SET outcome = 'succeeded', finished_at = $3
                  FROM done WHERE a.task_id = done.id AND a.attempt = done.attempt
            ), info AS (
                SELECT done.id, done.key, done.workflow_id, done.attempt, w.trace_id FROM done JOIN workflows w ON w.id = done.workflow_id
            ), event AS (
                INSERT INTO workflow_events (workflow_id, type, at, task_id, task_key, task_state, attempt, executor_id, trace_id,
                                             actor, request_trace_id)
                SELECT workflow_id, 'task_succeeded', $3, id, key, 'succeeded', attempt, $5, trace_id, $6::jsonb, $7 FROM info
            )
            SELECT workflow_id, trace_id FROM info
            """,
            [
                taskID, result, report.now.sqlTimestamp, report.lease.fencingToken, report.executorID, transaction.causeActor,
                transaction.causeTraceID,
            ])
        guard let row = rows.first else { return nil }
        transaction.appendedEvents = true
        let workflowID = try row.decode(String.self, column: "workflow_id")
        let traceID = try row.decode(String.self, column: "trace_id")
        _ = try await transaction.releaseChildren(of: taskID, workflowID: workflowID, traceID: traceID, now: report.now)
        transaction.sendNotifications()
        let finished = try await transaction.finishWorkflowIfDone(workflowID, now: report.now)
        return .accepted(taskState: .succeeded, workflowState: finished)
    }

    private func complete(_ task: ReportedTask, result: [UInt8], report: TaskReport, transaction: StoreTransaction) async throws -> ReportResult {
        // The task, its attempt and its event in one statement (tasks_pkey, task_attempts_pkey).
        try await transaction.query(
            """
            WITH done AS (
                UPDATE tasks
                   SET state = 'succeeded', result = $2, lease_owner = NULL, lease_expires_at = NULL, finished_at = $3, updated_at = $3
                 WHERE id = $1
             RETURNING id, key
            ), attempt AS (
                UPDATE task_attempts a SET outcome = 'succeeded', finished_at = $3 FROM done WHERE a.task_id = done.id AND a.attempt = $4
            )
            INSERT INTO workflow_events (workflow_id, type, at, task_id, task_key, task_state, attempt, executor_id, trace_id, actor,
                                         request_trace_id)
            SELECT $5, 'task_succeeded', $3, id, key, 'succeeded', $4, $6, $7, $8::jsonb, $9 FROM done
            """,
            [
                task.id, result, report.now.sqlTimestamp, task.attempt, task.workflowID, report.executorID, task.traceID,
                transaction.causeActor, transaction.causeTraceID,
            ])
        transaction.appendedEvents = true
        _ = try await transaction.releaseChildren(of: task.id, workflowID: task.workflowID, traceID: task.traceID, now: report.now)
        transaction.sendNotifications()
        let finished = try await transaction.finishWorkflowIfDone(task.workflowID, now: report.now)
        return .accepted(taskState: .succeeded, workflowState: finished)
    }

    private func fail(_ task: ReportedTask, failure: TaskFailureInfo, report: TaskReport, transaction: StoreTransaction) async throws -> ReportResult {
        let spec = try JSONColumn.decode(TaskSpec.self, from: task.metadata)
        let error = try JSONColumn.encode(FailureJSON(failure))
        let taskIDText = task.id.uuidString.lowercased()
        if failure.retryable && task.attempt < task.maxAttempts {
            let delay = RetryDelay.millis(spec: spec, afterAttempt: task.attempt, sample: report.jitterSample)
            let state = delay > 0 ? TaskStateColumn.retryWait : "ready"
            try await transaction.query(
                """
                WITH retried AS (
                    UPDATE tasks t
                       SET state = $2, lease_owner = NULL, lease_expires_at = NULL, last_error = $3,
                           next_attempt_at = CASE WHEN $2 = 'retry_wait' THEN $5 END,
                           ready_at = CASE WHEN $2 = 'ready' THEN $4 ELSE t.ready_at END,
                           dispatch_priority = CASE WHEN $2 = 'ready' THEN t.priority - $6 ELSE t.dispatch_priority END,
                           updated_at = $4
                     WHERE id = $1
                 RETURNING id
                )
                UPDATE task_attempts a SET outcome = 'failed', finished_at = $4, error = $3
                  FROM retried WHERE a.task_id = retried.id AND a.attempt = $7
                """,
                [
                    task.id, state, error, report.now.sqlTimestamp, (report.now + delay).sqlTimestamp,
                    context.configuration.agingBucket(report.now), task.attempt,
                ])
            if state == "ready" { transaction.readiedTasks = true }
            var events = [
                EventDraft(
                    workflowID: task.workflowID, kind: .taskRetryScheduled, at: report.now, taskID: taskIDText, taskKey: task.key,
                    taskState: state, attempt: task.attempt, executorID: report.executorID,
                    message: "\(failure.message) (retry in \(delay) ms)", traceID: task.traceID)
            ]
            if state == "ready" {
                // As when a backoff elapses (promoteDueRetries): every return to the queue has its task_ready.
                events.append(EventDraft(
                    workflowID: task.workflowID, kind: .taskReady, at: report.now, taskID: taskIDText, taskKey: task.key,
                    taskState: "ready", attempt: task.attempt, traceID: task.traceID))
            }
            try transaction.append(events)
            return .accepted(taskState: .ready, workflowState: nil)
        }
        try await transaction.query(
            """
            WITH failed AS (
                UPDATE tasks
                   SET state = 'failed', lease_owner = NULL, lease_expires_at = NULL, last_error = $2, finished_at = $3, updated_at = $3
                 WHERE id = $1
             RETURNING id
            )
            UPDATE task_attempts a SET outcome = 'failed', finished_at = $3, error = $2
              FROM failed WHERE a.task_id = failed.id AND a.attempt = $4
            """, [task.id, error, report.now.sqlTimestamp, task.attempt])
        try transaction.append([
            EventDraft(
                workflowID: task.workflowID, kind: .taskFailed, at: report.now, taskID: taskIDText, taskKey: task.key, taskState: "failed",
                attempt: task.attempt, executorID: report.executorID, message: failure.message, traceID: task.traceID)
        ])
        let finished = try await transaction.applyFailurePolicy(
            workflowID: task.workflowID, failedTaskID: task.id, failedKey: task.key, reason: failure.message, traceID: task.traceID,
            now: report.now)
        return .accepted(taskState: .failed, workflowState: finished)
    }
}
