import OrchestratorDomain

/// Kinds of event-log entries; mirrors `orchestrator.v1.EventType`.
public enum EventKind: String, Hashable, Sendable, CaseIterable {
    case workflowSubmitted = "workflow_submitted"
    case workflowPlanned = "workflow_planned"
    case workflowSucceeded = "workflow_succeeded"
    case workflowFailed = "workflow_failed"
    case workflowCancelled = "workflow_cancelled"
    case dagUpdated = "dag_updated"
    case taskReady = "task_ready"
    case taskLeased = "task_leased"
    case taskRunning = "task_running"
    case taskProgress = "task_progress"
    case taskSucceeded = "task_succeeded"
    case taskFailed = "task_failed"
    case taskRetryScheduled = "task_retry_scheduled"
    case taskLeaseExpired = "task_lease_expired"
    case taskCancelled = "task_cancelled"
    case taskSkipped = "task_skipped"
    case reportRefused = "report_refused"
    case taskLeaseResumed = "task_lease_resumed"
    /// Read only: a type this server does not know, written by a newer one beside it in a
    /// rolling upgrade. Delivered as `EVENT_TYPE_UNSPECIFIED` with the event's other fields, so
    /// a watch or a listing goes on instead of failing on the event.
    case unrecognized = ""

    /// The stored type name's kind; `.unrecognized` for a name this server does not know.
    public init(storedName: String) {
        self = EventKind(rawValue: storedName).flatMap { $0 == .unrecognized ? nil : $0 } ?? .unrecognized
    }
}

/// One entry of the event log: appended in the same transaction as the change it records.
public struct StoredEvent: Hashable, Sendable {
    /// Strictly increasing (gaps possible); watchers resume after the last one they saw.
    public var sequence: Int64
    public var workflowID: String
    public var tenant: String
    public var kind: EventKind
    public var at: UnixMillis
    public var taskID: String?
    public var taskKey: String?
    public var taskState: TaskState?
    /// The task was waiting out a retry backoff (`taskState` is then `.ready`: the domain keeps a
    /// waiting task as ready with a later `availableAt`). The API shows it as RETRY_WAIT, as
    /// Task.state does; events of such tasks said READY (found by black-box testing).
    public var taskRetryWaiting = false
    public var attempt: Int?
    public var executorID: String?
    public var workflowState: WorkflowState?
    public var dagVersion: Int?
    public var message: String
    public var progress: Double?
    /// The workflow's trace id.
    public var traceID: String
    /// Who caused it: the caller whose call appended it (`AuditCause`); nil for the server's own work.
    public var actor: Actor?
    /// The trace id of that call; nil when `actor` is.
    public var requestTraceID: String?

    public init(
        sequence: Int64, workflowID: String, tenant: String, kind: EventKind, at: UnixMillis, taskID: String? = nil,
        taskKey: String? = nil, taskState: TaskState? = nil, attempt: Int? = nil, executorID: String? = nil,
        workflowState: WorkflowState? = nil, dagVersion: Int? = nil, message: String = "", progress: Double? = nil,
        traceID: String, actor: Actor? = nil, requestTraceID: String? = nil
    ) {
        self.sequence = sequence
        self.workflowID = workflowID
        self.tenant = tenant
        self.kind = kind
        self.at = at
        self.taskID = taskID
        self.taskKey = taskKey
        self.taskState = taskState
        self.attempt = attempt
        self.executorID = executorID
        self.workflowState = workflowState
        self.dagVersion = dagVersion
        self.message = message
        self.progress = progress
        self.traceID = traceID
        self.actor = actor
        self.requestTraceID = requestTraceID
    }

    /// True for the last event a workflow ever gets.
    public var isWorkflowTerminal: Bool {
        kind == .workflowSucceeded || kind == .workflowFailed || kind == .workflowCancelled
    }
}
