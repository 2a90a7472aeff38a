import OrchestratorDomain

/// Milliseconds since the Unix epoch. The database's clock is the reference for leases; the
/// application passes `now` explicitly so tests control time.
public typealias UnixMillis = Int64

/// Who caused a change, recorded on every event (the audit trail).
public struct Actor: Hashable, Sendable {
    public var subject: String
    public var role: String
    public var tenant: String

    public init(subject: String, role: String, tenant: String) {
        self.subject = subject
        self.role = role
        self.tenant = tenant
    }

    /// The identity used when authentication is off (development mode).
    public static let anonymous = Actor(subject: "anonymous", role: "admin", tenant: "default")
}

/// What happens to the rest of a workflow when one of its tasks fails for good.
public enum FailurePolicy: String, Hashable, Sendable {
    /// Cancel everything unfinished; the workflow fails at once.
    case failFast = "fail_fast"
    /// Skip the failed task's downstream tasks, let independent branches finish, then fail.
    case continueIndependent = "continue_independent"
}

/// A lease: a task plus the fencing token (attempt number) it was granted for.
public struct LeaseToken: Hashable, Sendable, CustomStringConvertible {
    public var taskID: String
    public var fencingToken: Int64

    public init(taskID: String, fencingToken: Int64) {
        self.taskID = taskID
        self.fencingToken = fencingToken
    }

    public var description: String { "\(taskID)#\(fencingToken)" }
}

/// The last failure of a task attempt.
public struct TaskFailureInfo: Hashable, Sendable {
    /// Who ended the attempt: its executor's failure report, its lease lapsing, its start_to_close
    /// timeout, its cancellation — or dispatch, which refused to hand the task out (an assignment
    /// over max-assignment-size): no executor saw it.
    /// `released`: the executor's stream ended holding the lease (its process died, it hung up),
    /// and the lease was given back at once; `cancelled`: the workflow was cancelled while the
    /// attempt ran.
    public enum Source: String, Hashable, Sendable { case executor, leaseExpired = "lease_expired", timeout, cancelled, released, dispatch }
    public var message: String
    public var code: String
    public var retryable: Bool
    public var attempt: Int
    public var source: Source

    public init(message: String, code: String = "", retryable: Bool, attempt: Int, source: Source) {
        self.message = message
        self.code = code
        self.retryable = retryable
        self.attempt = attempt
        self.source = source
    }
}

/// A task as stored: its spec and its run-time state.
public struct StoredTask: Hashable, Sendable {
    public var taskID: String
    public var workflowID: String
    public var tenant: String
    public var spec: TaskSpec
    /// Opaque input handed to executors (TaskSpec.payload in the API).
    public var payload: [UInt8]
    public var state: TaskState
    /// Current or last attempt, from 1 once leased; it is the fencing token. 0 before the first lease.
    public var attempt: Int
    public var maxAttempts: Int
    public var unfinishedUpstream: Int
    /// Critical-path rank (remaining-path cost).
    public var rank: Double
    /// Effective explicit priority (the task's own, else the workflow's).
    public var priority: Int
    public var leaseOwner: String?
    public var leaseExpiresAt: UnixMillis?
    /// A ready task waiting out its retry backoff is not claimable before this instant.
    public var availableAt: UnixMillis?
    public var result: [UInt8]?
    public var lastError: TaskFailureInfo?
    public var createdAt: UnixMillis
    public var readyAt: UnixMillis?
    public var startedAt: UnixMillis?
    public var finishedAt: UnixMillis?
    public var traceID: String
    /// The W3C `tracestate` the workflow was submitted with (`TraceState.propagated`), passed on
    /// to the executors of its tasks with the trace.
    public var traceState: String?
    /// The workflow's sampling decision (`NewWorkflow.traceSampled`); nil for a workflow stored
    /// before it was kept (migration 0011): the server's sampler decides.
    public var traceSampled: Bool?
    public var dagVersion: Int

    public init(
        taskID: String, workflowID: String, tenant: String, spec: TaskSpec, payload: [UInt8] = [], state: TaskState,
        attempt: Int = 0, maxAttempts: Int, unfinishedUpstream: Int, rank: Double, priority: Int,
        leaseOwner: String? = nil, leaseExpiresAt: UnixMillis? = nil, availableAt: UnixMillis? = nil,
        result: [UInt8]? = nil, lastError: TaskFailureInfo? = nil, createdAt: UnixMillis, readyAt: UnixMillis? = nil,
        startedAt: UnixMillis? = nil, finishedAt: UnixMillis? = nil, traceID: String, traceState: String? = nil, traceSampled: Bool? = nil,
        dagVersion: Int
    ) {
        self.taskID = taskID
        self.workflowID = workflowID
        self.tenant = tenant
        self.spec = spec
        self.payload = payload
        self.state = state
        self.attempt = attempt
        self.maxAttempts = maxAttempts
        self.unfinishedUpstream = unfinishedUpstream
        self.rank = rank
        self.priority = priority
        self.leaseOwner = leaseOwner
        self.leaseExpiresAt = leaseExpiresAt
        self.availableAt = availableAt
        self.result = result
        self.lastError = lastError
        self.createdAt = createdAt
        self.readyAt = readyAt
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.traceID = traceID
        self.traceState = traceState
        self.traceSampled = traceSampled
        self.dagVersion = dagVersion
    }
}

/// How the plan came about.
public struct PlanningRecord: Hashable, Sendable {
    public var planner: String
    public var durationMicros: Int64
    public var rationale: String
    public var warnings: [String]
    public var totalCost: Double

    public init(planner: String, durationMicros: Int64, rationale: String, warnings: [String] = [], totalCost: Double = 0) {
        self.planner = planner
        self.durationMicros = durationMicros
        self.rationale = rationale
        self.warnings = warnings
        self.totalCost = totalCost
    }
}

/// Number of tasks in each state.
public struct TaskCounts: Hashable, Sendable {
    public var byState: [TaskState: Int]
    /// Tasks waiting out a retry backoff (stored as `retry_wait`; the domain calls them READY, so
    /// they are counted here and not in `byState[.ready]`).
    public var retryWaiting: Int
    public init(byState: [TaskState: Int] = [:], retryWaiting: Int = 0) {
        self.byState = byState
        self.retryWaiting = retryWaiting
    }
    public var total: Int { byState.values.reduce(0, +) + retryWaiting }
    public subscript(_ state: TaskState) -> Int { byState[state] ?? 0 }
}

/// A workflow as stored.
public struct WorkflowRecord: Hashable, Sendable {
    public var workflowID: String
    public var tenant: String
    public var requestID: String?
    public var state: WorkflowState
    public var query: Query
    public var currentDagVersion: Int
    public var failurePolicy: FailurePolicy
    public var traceID: String
    public var labels: [String: String]
    public var priority: Int
    public var planning: PlanningRecord?
    public var counts: TaskCounts
    public var error: String?
    public var submittedBy: String
    public var createdAt: UnixMillis
    public var updatedAt: UnixMillis
    public var finishedAt: UnixMillis?
    /// The read left the query's explicit graph out (`QueryGraphRead`): `query.explicitGraph` is
    /// nil although the workflow was submitted with one.
    public var queryGraphLeftOut = false

    public init(
        workflowID: String, tenant: String, requestID: String?, state: WorkflowState, query: Query,
        currentDagVersion: Int, failurePolicy: FailurePolicy, traceID: String, labels: [String: String], priority: Int,
        planning: PlanningRecord?, counts: TaskCounts, error: String?, submittedBy: String, createdAt: UnixMillis,
        updatedAt: UnixMillis, finishedAt: UnixMillis?
    ) {
        self.workflowID = workflowID
        self.tenant = tenant
        self.requestID = requestID
        self.state = state
        self.query = query
        self.currentDagVersion = currentDagVersion
        self.failurePolicy = failurePolicy
        self.traceID = traceID
        self.labels = labels
        self.priority = priority
        self.planning = planning
        self.counts = counts
        self.error = error
        self.submittedBy = submittedBy
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.finishedAt = finishedAt
    }
}

/// A version of a workflow's graph without the graph: what a version list shows.
public struct DagVersionSummary: Hashable, Sendable {
    public var version: Int
    public var taskCount: Int
    public var reason: String
    public var author: String
    public var createdAt: UnixMillis

    public init(version: Int, taskCount: Int, reason: String, author: String, createdAt: UnixMillis) {
        self.version = version
        self.taskCount = taskCount
        self.reason = reason
        self.author = author
        self.createdAt = createdAt
    }
}

/// One stored version of a workflow's graph.
public struct StoredDagVersion: Hashable, Sendable {
    public var workflowID: String
    public var version: Int
    public var dag: Dag
    public var reason: String
    public var author: String
    public var createdAt: UnixMillis

    public init(workflowID: String, version: Int, dag: Dag, reason: String, author: String, createdAt: UnixMillis) {
        self.workflowID = workflowID
        self.version = version
        self.dag = dag
        self.reason = reason
        self.author = author
        self.createdAt = createdAt
    }
}
