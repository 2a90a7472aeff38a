import OrchestratorDomain
import OrchestratorTracing

/// A planned workflow to store with its first DAG version.
public struct NewWorkflow: Sendable {
    public var workflowID: String
    public var tenant: String
    /// Idempotency key, unique per tenant; nil = no deduplication.
    public var requestID: String?
    public var query: Query
    public var dag: Dag
    /// Opaque executor input per task key (TaskSpec.payload).
    public var payloads: [TaskKey: [UInt8]]
    /// Critical-path rank per task key (from the domain's analysis).
    public var ranks: [TaskKey: Double]
    public var planning: PlanningRecord
    public var failurePolicy: FailurePolicy
    public var traceID: String
    /// The caller's W3C `tracestate`, already checked (`TraceState.propagated`); nil for none.
    public var traceState: String?
    /// Whether the workflow's trace is sampled: the caller's `traceparent` flag, else the server's
    /// sampler. Every dispatch of its tasks, and so every assignment's `traceparent`, says the same.
    public var traceSampled = true
    public var labels: [String: String]
    public var priority: Int
    public var actor: Actor
    public var now: UnixMillis
    /// The DAG is a delegated planner's planning task: the workflow starts PLANNING and is never
    /// finished as succeeded until the graph that task proposes is adopted (`DagUpdate.completesPlanning`).
    public var awaitingPlan = false
    /// Tasks without upstream tasks to store already leased to an idle executor of this process
    /// ("sync match", `DirectDispatch`): no claim between their readiness and their assignment.
    /// Keys of tasks that have upstream tasks are ignored.
    public var directLeases: [TaskKey: DirectLease] = [:]

    public init(
        workflowID: String, tenant: String, requestID: String?, query: Query, dag: Dag, payloads: [TaskKey: [UInt8]] = [:],
        ranks: [TaskKey: Double], planning: PlanningRecord, failurePolicy: FailurePolicy, traceID: String,
        labels: [String: String], priority: Int, actor: Actor, now: UnixMillis
    ) {
        self.workflowID = workflowID
        self.tenant = tenant
        self.requestID = requestID
        self.query = query
        self.dag = dag
        self.payloads = payloads
        self.ranks = ranks
        self.planning = planning
        self.failurePolicy = failurePolicy
        self.traceID = traceID
        self.labels = labels
        self.priority = priority
        self.actor = actor
        self.now = now
    }
}

/// The result of `createWorkflow`: the stored workflow, and whether this call created it
/// (false when the request id matched an existing workflow).
public struct CreatedWorkflow: Sendable {
    public var workflow: WorkflowRecord
    public var created: Bool
    /// The tasks stored leased (`NewWorkflow.directLeases`), as a claim would have returned them.
    public var leased: [ClaimedTask]

    public init(workflow: WorkflowRecord, created: Bool, leased: [ClaimedTask] = []) {
        self.workflow = workflow
        self.created = created
        self.leased = leased
    }
}

/// A lease granted in the transaction that creates the task (`NewWorkflow.directLeases`).
public struct DirectLease: Hashable, Sendable {
    public var executorID: String
    public var leaseTTLMillis: Int64
    /// The audit cause of the executor's lease stream (the actor and trace of its task_leased event).
    public var cause: AuditCause?

    public init(executorID: String, leaseTTLMillis: Int64, cause: AuditCause?) {
        self.executorID = executorID
        self.leaseTTLMillis = leaseTTLMillis
        self.cause = cause
    }
}

/// Filters and paging for `listWorkflows`.
public struct WorkflowListQuery: Sendable {
    /// nil = every tenant (admin only; the application decides).
    public var tenant: String?
    public var states: Set<WorkflowState>
    public var labels: [String: String]
    public var createdAfter: UnixMillis?
    public var createdBefore: UnixMillis?
    public var pageSize: Int
    /// Opaque cursor from the previous page.
    public var pageToken: String?
    /// A page ends before the workflow that would take its stored size past this (a page holds one
    /// workflow at least): queries carry inputs of up to megabytes each, and two of 3 MB made a
    /// page no default client could read.
    public var maxBytes: Int

    public init(
        tenant: String?, states: Set<WorkflowState> = [], labels: [String: String] = [:], createdAfter: UnixMillis? = nil,
        createdBefore: UnixMillis? = nil, pageSize: Int = 100, pageToken: String? = nil, maxBytes: Int = 1 << 20
    ) {
        self.tenant = tenant
        self.states = states
        self.labels = labels
        self.createdAfter = createdAfter
        self.createdBefore = createdBefore
        self.pageSize = pageSize
        self.pageToken = pageToken
        self.maxBytes = maxBytes
    }
}

public struct WorkflowPage: Sendable {
    /// Newest first.
    public var workflows: [WorkflowRecord]
    public var nextPageToken: String?

    public init(workflows: [WorkflowRecord], nextPageToken: String?) {
        self.workflows = workflows
        self.nextPageToken = nextPageToken
    }
}

/// One page of a workflow's tasks in key order (`WorkflowStore.taskPage`).
public struct TaskPageQuery: Sendable {
    public var workflowID: String
    /// Only tasks in these states (READY includes tasks waiting out a retry backoff); empty = all.
    public var states: Set<TaskState>
    public var pageSize: Int
    /// A page ends early once its tasks' payloads and results add up past this many bytes; it
    /// always holds at least one task.
    public var maxBytes: Int
    public var includeResults: Bool
    /// Opaque cursor from the previous page.
    public var pageToken: String?

    public init(
        workflowID: String, states: Set<TaskState> = [], pageSize: Int = 100, maxBytes: Int = 1 << 20,
        includeResults: Bool = true, pageToken: String? = nil
    ) {
        self.workflowID = workflowID
        self.states = states
        self.pageSize = pageSize
        self.maxBytes = maxBytes
        self.includeResults = includeResults
        self.pageToken = pageToken
    }
}

public struct TaskPage: Sendable {
    /// In key order.
    public var tasks: [StoredTask]
    /// The upstream task keys of each task of the page, by task id.
    public var upstreamKeys: [String: [TaskKey]]
    public var nextPageToken: String?

    public init(tasks: [StoredTask], upstreamKeys: [String: [TaskKey]], nextPageToken: String?) {
        self.tasks = tasks
        self.upstreamKeys = upstreamKeys
        self.nextPageToken = nextPageToken
    }
}

/// A change to a workflow's graph, validated by the application before it reaches the store.
public struct DagUpdate: Sendable {
    public var workflowID: String
    public var tenant: String?
    public var expectedVersion: Int
    /// The complete new graph (the application applied the change and validated it).
    public var newDag: Dag
    public var payloads: [TaskKey: [UInt8]]
    public var ranks: [TaskKey: Double]
    public var reason: String
    public var actor: Actor
    public var now: UnixMillis
    /// This version adopts a planning task's proposed graph: a PLANNING workflow becomes RUNNING
    /// in the same transaction (workflow_planned event).
    public var completesPlanning = false

    public init(
        workflowID: String, tenant: String?, expectedVersion: Int, newDag: Dag, payloads: [TaskKey: [UInt8]] = [:],
        ranks: [TaskKey: Double], reason: String, actor: Actor, now: UnixMillis
    ) {
        self.workflowID = workflowID
        self.tenant = tenant
        self.expectedVersion = expectedVersion
        self.newDag = newDag
        self.payloads = payloads
        self.ranks = ranks
        self.reason = reason
        self.actor = actor
        self.now = now
    }
}

/// What an executor asks for when it has free slots.
public struct ClaimRequest: Sendable {
    public var executorID: String
    public var capabilities: Set<String>
    /// Tenants the executor serves; nil = all.
    public var tenants: Set<String>?
    public var limit: Int
    public var leaseTTLMillis: Int64
    public var now: UnixMillis

    public init(executorID: String, capabilities: Set<String>, tenants: Set<String>?, limit: Int, leaseTTLMillis: Int64, now: UnixMillis) {
        self.executorID = executorID
        self.capabilities = capabilities
        self.tenants = tenants
        self.limit = limit
        self.leaseTTLMillis = leaseTTLMillis
        self.now = now
    }
}

/// A task just leased to an executor, with everything the assignment message needs.
public struct ClaimedTask: Sendable {
    public var task: StoredTask
    public var lease: LeaseToken
    public var leaseExpiresAt: UnixMillis
    /// Results of the upstream tasks by key.
    public var upstreamResults: [String: [UInt8]]
    /// The workflow query's inputs.
    public var inputs: [String: String]
    /// The span from claim to hand-over, in the workflow's trace; the assignment's `traceparent`
    /// names it, so the executor's span is its child. Set by dispatch, ended once the assignment
    /// was handed to the transport.
    public var dispatchSpan: Span?

    public init(task: StoredTask, lease: LeaseToken, leaseExpiresAt: UnixMillis, upstreamResults: [String: [UInt8]], inputs: [String: String]) {
        self.task = task
        self.lease = lease
        self.leaseExpiresAt = leaseExpiresAt
        self.upstreamResults = upstreamResults
        self.inputs = inputs
    }

    /// Bytes its assignment takes at least: the payload, upstream results and inputs it carries.
    public var assignmentBytesLowerBound: Int {
        var bytes = task.payload.count
        for (key, result) in upstreamResults { bytes += key.utf8.count + result.count }
        for (name, value) in inputs { bytes += name.utf8.count + value.utf8.count }
        return bytes
    }

    /// The TTL the lease was granted with: the task's own (`Timeouts.lease_ttl_ms`, in whole
    /// seconds) or the server's default, as the claim and direct dispatch stamp its expiry.
    public func leaseTTLMillis(default fallback: Int64) -> Int64 {
        task.spec.leaseTTLMillis ?? fallback
    }
}

/// A final or progress report from an executor.
public struct TaskReport: Sendable {
    public enum Outcome: Sendable {
        case progress(fraction: Double, message: String)
        case completed(result: [UInt8])
        case failed(message: String, code: String, retryable: Bool)
    }

    public var lease: LeaseToken
    public var executorID: String
    public var outcome: Outcome
    /// In [0, 1): spreads retry delays (injected so tests are deterministic).
    public var jitterSample: Double
    public var now: UnixMillis
    /// Who a failure comes from: its executor, or dispatch failing a task it would not send.
    public var failureSource: TaskFailureInfo.Source

    public init(
        lease: LeaseToken, executorID: String, outcome: Outcome, jitterSample: Double = 0.5, now: UnixMillis,
        failureSource: TaskFailureInfo.Source = .executor
    ) {
        self.lease = lease
        self.executorID = executorID
        self.outcome = outcome
        self.jitterSample = jitterSample
        self.now = now
        self.failureSource = failureSource
    }
}

/// What a report did.
public enum ReportResult: Hashable, Sendable {
    /// Applied. `workflowState` is set when the report finished the workflow.
    case accepted(taskState: TaskState, workflowState: WorkflowState?)
    /// The fencing token is not the task's current one, or the lease is no longer held:
    /// nothing changed. `tenant` is the task's: a reporter who does not serve it is told
    /// `unknownTask` instead (`DispatchService.report`), not the task's state.
    case staleLease(currentToken: Int64, state: TaskState, tenant: String)
    /// A completion sent again by the executor whose completion of this very lease was stored
    /// (its acknowledgement was lost, say): nothing changed, and it is answered as accepted.
    case alreadyCompleted
    case unknownTask
    /// Sent on a Lease stream whose lease another stream of the same executor id has since
    /// resumed (two processes sharing an id): the revoked stream's reports are refused, or the
    /// process told to stop could still store a result or spend the attempt under the new holder.
    /// Decided by the server's lease table, before the store.
    case heldByAnotherStream
    /// As `heldByAnotherStream`, for a lease that was assigned to the other stream (nothing
    /// was resumed: the answer must not say it was).
    case assignedToAnotherStream
}

/// A request to push one lease's expiry to `until`.
public struct LeaseExtension: Hashable, Sendable {
    public var lease: LeaseToken
    public var executorID: String
    public var until: UnixMillis

    public init(lease: LeaseToken, executorID: String, until: UnixMillis) {
        self.lease = lease
        self.executorID = executorID
        self.until = until
    }
}

/// The state of one lease after a heartbeat.
public struct LeaseState: Hashable, Sendable {
    public var lease: LeaseToken
    public var valid: Bool
    public var expiresAt: UnixMillis?
    /// The task's workflow and its trace id, when the store read them (resumed leases).
    public var workflowID: String?
    public var traceID: String?

    public init(lease: LeaseToken, valid: Bool, expiresAt: UnixMillis?, workflowID: String? = nil, traceID: String? = nil) {
        self.lease = lease
        self.valid = valid
        self.expiresAt = expiresAt
        self.workflowID = workflowID
        self.traceID = traceID
    }
}

/// A lease the reaper took back.
public struct ExpiredLease: Hashable, Sendable {
    public var lease: LeaseToken
    public var workflowID: String
    public var executorID: String
    /// `.ready` (requeued, possibly after backoff) or `.failed` (attempts exhausted).
    public var newState: TaskState
    /// Why the lease was taken back: `.leaseExpired`, `.timeout` (the attempt ran past its
    /// start_to_close timeout) or `.cancelled` (released).
    public var cause: TaskFailureInfo.Source = .leaseExpired
    /// The workflow's new state when settling this lease finished it (attempts exhausted under
    /// fail_fast: its other tasks were cancelled in the same transaction).
    public var workflowState: WorkflowState? = nil
    /// The task's key, for messages (nil when the store did not read it).
    public var taskKey: String? = nil

    public init(lease: LeaseToken, workflowID: String, executorID: String, newState: TaskState) {
        self.lease = lease
        self.workflowID = workflowID
        self.executorID = executorID
        self.newState = newState
    }
}

/// Leases revoked by a cancellation, so the application can tell their executors.
public struct CancellationResult: Sendable {
    public var workflow: WorkflowRecord
    public var revokedLeases: [(lease: LeaseToken, executorID: String)]

    public init(workflow: WorkflowRecord, revokedLeases: [(lease: LeaseToken, executorID: String)]) {
        self.workflow = workflow
        self.revokedLeases = revokedLeases
    }
}

/// Which events to read.
public struct EventQuery: Sendable {
    public var afterSequence: Int64
    /// nil = every workflow (of `tenant`, when set).
    public var workflowID: String?
    public var tenant: String?
    public var limit: Int

    public init(afterSequence: Int64, workflowID: String? = nil, tenant: String? = nil, limit: Int = 1000) {
        self.afterSequence = afterSequence
        self.workflowID = workflowID
        self.tenant = tenant
        self.limit = limit
    }
}
