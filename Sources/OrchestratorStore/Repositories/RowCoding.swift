import Foundation
import OrchestratorApp
import OrchestratorDomain
import PostgresClient

/// Decoding of task, workflow and event rows, and the JSON shapes of the jsonb columns that are
/// not domain types of their own.

/// `tasks.state` holds one more state than `TaskState`: `retry_wait`, a ready task waiting out its
/// backoff (claimable from `next_attempt_at`). The contract shows it as `.ready` with `availableAt`.
enum TaskStateColumn {
    static let retryWait = "retry_wait"
    /// States of a task that is not finished (the partial index tasks_workflow_unfinished_idx).
    static let unfinishedSQL = "('pending', 'ready', 'retry_wait', 'leased', 'running')"

    static func decode(_ text: String) throws -> TaskState {
        if text == retryWait { return .ready }
        guard let state = TaskState(rawValue: text) else {
            throw PostgresError(code: .decoding, message: "unknown task state \(text)")
        }
        return state
    }
}

/// `tasks.last_error` and `task_attempts.error`.
struct FailureJSON: Codable {
    var message: String
    var code: String
    var retryable: Bool
    var attempt: Int
    var source: String

    init(_ info: TaskFailureInfo) {
        message = info.message
        code = info.code
        retryable = info.retryable
        attempt = info.attempt
        source = info.source.rawValue
    }

    var info: TaskFailureInfo {
        TaskFailureInfo(
            message: message, code: code, retryable: retryable, attempt: attempt,
            source: TaskFailureInfo.Source(rawValue: source) ?? .executor)
    }
}

/// `workflows.planning`.
struct PlanningJSON: Codable {
    var planner: String
    var durationMicros: Int64
    var rationale: String
    var warnings: [String]
    var totalCost: Double

    init(_ record: PlanningRecord) {
        planner = record.planner
        durationMicros = record.durationMicros
        rationale = record.rationale
        warnings = record.warnings
        totalCost = record.totalCost
    }

    var record: PlanningRecord {
        PlanningRecord(planner: planner, durationMicros: durationMicros, rationale: rationale, warnings: warnings, totalCost: totalCost)
    }
}

/// `workflow_events.actor`.
struct ActorJSON: Codable {
    var subject: String
    var role: String
    var tenant: String

    init(_ actor: Actor) {
        subject = actor.subject
        role = actor.role
        tenant = actor.tenant
    }

    var actor: Actor { Actor(subject: subject, role: role, tenant: tenant) }

    /// The column's JSON text, written directly: it is built for every claim and report, where a
    /// `JSONEncoder` per request showed up in profiles. Same document as encoding `ActorJSON`.
    static func text(_ actor: Actor) throws -> String {
        var writer = JSONBytes(capacity: 48 + actor.role.utf8.count + actor.subject.utf8.count + actor.tenant.utf8.count)
        writer.raw("{\"role\":")
        writer.string(actor.role)
        writer.raw(",\"subject\":")
        writer.string(actor.subject)
        writer.raw(",\"tenant\":")
        writer.string(actor.tenant)
        writer.raw("}")
        return String(decoding: writer.bytes, as: UTF8.self)
    }
}

enum TaskRow {
    /// Columns every task read selects, from `tasks t` joined with `workflows w`.
    static let columns = """
        t.id, t.workflow_id, w.tenant, t.key, t.metadata, t.input, t.state, t.attempt, t.max_attempts,
        t.unfinished_upstream, t.rank, t.priority, t.lease_owner, t.lease_expires_at, t.next_attempt_at,
        t.result, t.last_error, t.created_at, t.ready_at, t.started_at, t.finished_at, w.trace_id, w.trace_state, w.trace_sampled,
        t.dag_version
        """

    static func decode(_ row: PostgresRow, decoder: JSONDecoder) throws -> StoredTask {
        let stateText = try row.decode(String.self, column: "state")
        let spec = try TaskSpecJSON.decodeOrThrow(try row.decode(PostgresJSON.self, column: "metadata").text, decoder: decoder)
        let lastError = try row.decode(PostgresJSON?.self, column: "last_error").map {
            try decoder.decode(FailureJSON.self, from: Data($0.text.utf8)).info
        }
        let nextAttempt = try row.decode(Date?.self, column: "next_attempt_at").unixMillis
        let readyAt = try row.decode(Date?.self, column: "ready_at").unixMillis
        return StoredTask(
            taskID: try row.decode(String.self, column: "id"),
            workflowID: try row.decode(String.self, column: "workflow_id"),
            tenant: try row.decode(String.self, column: "tenant"),
            spec: spec,
            payload: try row.decode([UInt8].self, column: "input"),
            state: try TaskStateColumn.decode(stateText),
            attempt: try row.decode(Int.self, column: "attempt"),
            maxAttempts: try row.decode(Int.self, column: "max_attempts"),
            unfinishedUpstream: try row.decode(Int.self, column: "unfinished_upstream"),
            rank: try row.decode(Double.self, column: "rank"),
            priority: try row.decode(Int.self, column: "priority"),
            leaseOwner: try row.decode(String?.self, column: "lease_owner"),
            leaseExpiresAt: try row.decode(Date?.self, column: "lease_expires_at").unixMillis,
            // A ready task is claimable from when it became ready; a retry waits for its backoff.
            availableAt: stateText == TaskStateColumn.retryWait ? nextAttempt : (stateText == "ready" ? readyAt : nil),
            result: try row.decode([UInt8]?.self, column: "result"),
            lastError: lastError,
            createdAt: try row.decode(Date.self, column: "created_at").unixMillis,
            readyAt: readyAt,
            startedAt: try row.decode(Date?.self, column: "started_at").unixMillis,
            finishedAt: try row.decode(Date?.self, column: "finished_at").unixMillis,
            traceID: try row.decode(String.self, column: "trace_id"),
            traceState: try row.decode(String?.self, column: "trace_state"),
            traceSampled: try row.decode(Bool?.self, column: "trace_sampled"),
            dagVersion: try row.decode(Int.self, column: "dag_version"))
    }
}

enum WorkflowRow {
    /// Columns of a workflow read, from `workflows w` joined with `queries q`; `counts` is a
    /// jsonb object state → number of tasks. The query is `q.summary` (no graph, migration 0015)
    /// where `queryGraph` leaves the graph out and the row has one; rows from before 0015 have
    /// none and are read whole.
    static func columns(_ queryGraph: QueryGraphRead) -> String {
        let leftOut =
            switch queryGraph {
            case .whole: "false"
            // (coalesce: no graph is a NULL count, and NULL > n is NULL, not false)
            case .upTo(let tasks): "coalesce(q.summary IS NOT NULL AND q.graph_task_count > \(tasks), false)"
            case .none: "(q.summary IS NOT NULL AND q.graph_task_count IS NOT NULL)"
            }
        return "CASE WHEN \(leftOut) THEN q.summary ELSE q.message END AS query, \(leftOut) AS query_graph_left_out, " + otherColumns
    }

    private static let otherColumns = """
        w.id, w.tenant, w.request_id, w.state, w.current_dag_version, w.failure_policy,
        w.trace_id, w.labels, w.priority, w.planning, w.error, w.submitted_by, w.created_at, w.updated_at,
        w.finished_at, \(taskCounts) AS counts
        """

    /// The workflow's task counts by state (jsonb). tasks_workflow_key_key holds the state
    /// (migration 0016), so this is answered from the index alone where the visibility map allows.
    static let taskCounts = """
        (SELECT coalesce(jsonb_object_agg(s.state, s.n), '{}'::jsonb)
           FROM (SELECT state, count(*) AS n FROM tasks WHERE workflow_id = w.id GROUP BY state) s)
        """

    static func decode(_ row: PostgresRow, decoder: JSONDecoder) throws -> WorkflowRecord {
        let stateText = try row.decode(String.self, column: "state")
        guard let state = WorkflowState(rawValue: stateText) else {
            throw PostgresError(code: .decoding, message: "unknown workflow state \(stateText)")
        }
        let policyText = try row.decode(String.self, column: "failure_policy")
        let query = try decoder.decode(Query.self, from: Data(try row.decode([UInt8].self, column: "query")))
        let labels = try decoder.decode([String: String].self, from: Data(try row.decode(PostgresJSON.self, column: "labels").text.utf8))
        let planning = try row.decode(PostgresJSON?.self, column: "planning").map {
            try decoder.decode(PlanningJSON.self, from: Data($0.text.utf8)).record
        }
        let rawCounts = try decoder.decode([String: Int].self, from: Data(try row.decode(PostgresJSON.self, column: "counts").text.utf8))
        var counts = TaskCounts()
        for (name, number) in rawCounts {
            if name == TaskStateColumn.retryWait {
                counts.retryWaiting += number
            } else {
                counts.byState[try TaskStateColumn.decode(name), default: 0] += number
            }
        }
        var record = WorkflowRecord(
            workflowID: try row.decode(String.self, column: "id"),
            tenant: try row.decode(String.self, column: "tenant"),
            requestID: try row.decode(String?.self, column: "request_id"),
            state: state,
            query: query,
            currentDagVersion: try row.decode(Int.self, column: "current_dag_version"),
            failurePolicy: FailurePolicy(rawValue: policyText) ?? .failFast,
            traceID: try row.decode(String.self, column: "trace_id"),
            labels: labels,
            priority: try row.decode(Int.self, column: "priority"),
            planning: planning,
            counts: counts,
            error: try row.decode(String?.self, column: "error"),
            submittedBy: try row.decode(String.self, column: "submitted_by"),
            createdAt: try row.decode(Date.self, column: "created_at").unixMillis,
            updatedAt: try row.decode(Date.self, column: "updated_at").unixMillis,
            finishedAt: try row.decode(Date?.self, column: "finished_at").unixMillis)
        record.queryGraphLeftOut = try row.decode(Bool.self, column: "query_graph_left_out")
        return record
    }
}

enum EventRow {
    static let columns = """
        e.seq, e.workflow_id, w.tenant, e.type, e.at, e.task_id, e.task_key, e.task_state, e.attempt, e.executor_id,
        e.workflow_state, e.dag_version, e.message, e.progress, e.trace_id, e.actor, e.request_trace_id
        """

    static func decode(_ row: PostgresRow, decoder: JSONDecoder) throws -> StoredEvent {
        let kind = EventKind(storedName: try row.decode(String.self, column: "type"))
        let actor = try row.decode(PostgresJSON?.self, column: "actor").map {
            try decoder.decode(ActorJSON.self, from: Data($0.text.utf8)).actor
        }
        let taskStateText = try row.decode(String?.self, column: "task_state")
        var event = StoredEvent(
            sequence: try row.decode(Int64.self, column: "seq"),
            workflowID: try row.decode(String.self, column: "workflow_id"),
            tenant: try row.decode(String.self, column: "tenant"),
            kind: kind,
            at: try row.decode(Date.self, column: "at").unixMillis,
            taskID: try row.decode(String?.self, column: "task_id"),
            taskKey: try row.decode(String?.self, column: "task_key"),
            taskState: try taskStateText.map { try TaskStateColumn.decode($0) },
            attempt: try row.decode(Int?.self, column: "attempt"),
            executorID: try row.decode(String?.self, column: "executor_id"),
            workflowState: try row.decode(String?.self, column: "workflow_state").flatMap(WorkflowState.init(rawValue:)),
            dagVersion: try row.decode(Int?.self, column: "dag_version"),
            message: try row.decode(String.self, column: "message"),
            progress: try row.decode(Double?.self, column: "progress"),
            traceID: try row.decode(String.self, column: "trace_id"),
            actor: actor,
            requestTraceID: try row.decode(String?.self, column: "request_trace_id"))
        event.taskRetryWaiting = taskStateText == TaskStateColumn.retryWait
        return event
    }
}
