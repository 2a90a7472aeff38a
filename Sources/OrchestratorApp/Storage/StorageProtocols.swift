import OrchestratorDomain

/// Typed storage failures. The gRPC edge maps them to status codes; nothing above the store
/// sees a database error.
public enum StoreError: Error, Hashable, Sendable, CustomStringConvertible {
    case notFound(String)
    /// `UpdateDag` named a version that is no longer current.
    case versionConflict(expected: Int, current: Int)
    /// A change touched tasks that already started or finished (their keys).
    case tasksAlreadyStarted([String])
    /// The workflow already finished (or was cancelled) and cannot change.
    case workflowFinished(String, WorkflowState)
    /// The database cannot be reached right now; retrying later may succeed.
    case unavailable(String)
    /// A list call's `page_token` is not one this server issued (or was tampered with).
    case malformedPageToken
    /// A list call's `page_token` was issued for another listing (another workflow's tasks).
    case pageTokenOfAnotherListing(String)

    public var description: String {
        switch self {
        case .notFound(let what): "not found: \(what)"
        case .versionConflict(let expected, let current):
            "DAG version conflict: the update expected version \(expected) but the current version is \(current)"
        case .tasksAlreadyStarted(let keys): "tasks already started or finished cannot change: \(keys.joined(separator: ", "))"
        case .workflowFinished(let id, let state): "workflow \(id) is already \(state.rawValue)"
        case .unavailable(let reason): "database unavailable: \(reason)"
        case .malformedPageToken: "page_token is not a token this server issued"
        case .pageTokenOfAnotherListing(let listing): "page_token was issued for \(listing), not for this one"
        }
    }
}

/// Workflows, their DAG versions and tasks. Every method that changes state appends its events
/// in the same transaction.
public protocol WorkflowStore: Sendable {
    /// Stores a workflow, its first DAG version and all its tasks in one transaction (batched,
    /// no round trip per task); tasks without upstream tasks start READY. When `requestID` is set
    /// and already used by the tenant, returns the existing workflow with `created == false`.
    func createWorkflow(_ workflow: NewWorkflow) async throws -> CreatedWorkflow

    /// A workflow by id; with `tenant` set, only that tenant's. `queryGraph` says when its query's
    /// explicit graph is decoded (40 MB of JSON for 100,000 tasks); when it is not,
    /// `WorkflowRecord.queryGraphLeftOut` says so.
    func workflow(id: String, tenant: String?, queryGraph: QueryGraphRead) async throws -> WorkflowRecord?

    /// A workflow's id, tenant, state and current DAG version, without its query or task counts:
    /// a watch that only needs those read and decoded a 100,000-task workflow's whole graph (+250
    /// MB per watcher; found by black-box testing), and so did every ListTasks page.
    func workflowHead(id: String, tenant: String?) async throws -> WorkflowHead?

    func listWorkflows(_ query: WorkflowListQuery) async throws -> WorkflowPage

    /// One DAG version (nil = current).
    func dagVersion(workflowID: String, version: Int?) async throws -> StoredDagVersion?

    /// Every version of a workflow's DAG, oldest first, without the graphs (GetDag decoded each
    /// version's whole graph to count its tasks).
    func dagHistory(workflowID: String) async throws -> [DagVersionSummary]

    /// Every task of the workflow's current DAG version.
    func tasks(workflowID: String) async throws -> [StoredTask]

    /// A page of the workflow's current tasks in key order, with their upstream keys.
    func taskPage(_ query: TaskPageQuery) async throws -> TaskPage

    /// The bytes the workflow's current tasks hold (specs, payloads, results), as `taskPage`
    /// measures them, read without reading the values.
    func taskBytes(workflowID: String) async throws -> Int

    /// Stores a new DAG version if `expectedVersion` is current: adds new tasks (ready when their
    /// upstream tasks already succeeded), removes tasks that have not started, rewires counters.
    /// Throws `StoreError.versionConflict` and writes nothing when another writer got there first.
    func updateDag(_ update: DagUpdate) async throws -> StoredDagVersion

    /// Cancels every unfinished task and the workflow; returns the leases it revoked.
    func cancelWorkflow(id: String, tenant: String?, reason: String, actor: Actor, now: UnixMillis) async throws -> CancellationResult
}

/// Claiming, reporting and lease bookkeeping: the dispatch hot path.
public protocol TaskDispatchStore: Sendable {
    /// Leases up to `limit` ready tasks whose required capabilities the executor has, most urgent
    /// first (explicit priority with aging, then critical-path rank, then age), `FOR UPDATE SKIP
    /// LOCKED` so any number of servers can claim concurrently; each gets a new fencing token.
    func claimTasks(_ request: ClaimRequest) async throws -> [ClaimedTask]

    /// Applies a progress, completion or failure report if its fencing token is current. A
    /// completion decrements the children's counters and readies those reaching zero; a failure
    /// retries with backoff (attempts left, retryable) or fails the task and applies the
    /// workflow's failure policy; the workflow finishes when its last task does. One transaction.
    func report(_ report: TaskReport) async throws -> ReportResult

    /// Extends each lease to its `until` when it is still held by its executor with that token,
    /// in one batched statement (the lease keeper calls it for every live lease of the process).
    /// A lease that is no longer held comes back with `valid == false` and nothing changes for it.
    func extendLeases(_ extensions: [LeaseExtension]) async throws -> [LeaseState]

    /// Like `extendLeases`, for leases an executor presents when it reconnects (`hello.resume`):
    /// each one still held moves to the new stream and gets a task_lease_resumed event (the audit
    /// trail records who resumed what), in one transaction. `sessionID` names the new stream: the
    /// stream that held the lease before, on this server or another, no longer gives it back.
    func resumeLeases(_ extensions: [LeaseExtension], sessionID: String, now: UnixMillis) async throws -> [LeaseState]

    /// Requeues (with backoff) or fails tasks whose lease expired before `now`.
    func expireLeases(now: UnixMillis, limit: Int) async throws -> [ExpiredLease]

    /// Like `expireLeases(now:limit:)`, for leases (and start_to_close deadlines) that ran out
    /// before `expiredBefore` (≤ `now`): after a database outage the reaper spares the leases
    /// whose expiry fell inside it until the keepers could extend them again.
    func expireLeases(now: UnixMillis, expiredBefore: UnixMillis, limit: Int) async throws -> [ExpiredLease]

    /// Gives leases back at once (their stream ended): requeued like an expiry, without waiting for
    /// the TTL. `sessionID` is the stream giving them back: a lease another stream resumed since
    /// (through another server) is that stream's now and is left alone; nil skips that check.
    func releaseLeases(_ leases: [LeaseToken], executorID: String, sessionID: String?, reason: String, now: UnixMillis) async throws
        -> [ExpiredLease]

    /// Settles leases the server saw lapse (no heartbeat for their TTL) exactly as the reaper
    /// settles an expiry (backoff, `lease_expired`), now rather than at its next sweep, so that a
    /// revocation is final: the holder's reports are refused from then on. `sessionID` as for
    /// `releaseLeases`.
    func lapseLeases(_ leases: [LeaseToken], executorID: String, sessionID: String?, reason: String, now: UnixMillis) async throws
        -> [ExpiredLease]

    /// Undoes the claims of leases whose assignments were never sent (a PollTasks response had
    /// no room for them, or its caller was gone): each task is ready again at its place in the
    /// queue and the attempt is not spent. Only leases `executorID` still holds with these tokens
    /// and has not reported on; returns how many.
    func returnUnsentLeases(_ leases: [LeaseToken], executorID: String, reason: String, now: UnixMillis) async throws -> Int
}

extension TaskDispatchStore {
    /// Stores without their own expire by `now`.
    public func expireLeases(now: UnixMillis, expiredBefore: UnixMillis, limit: Int) async throws -> [ExpiredLease] {
        try await expireLeases(now: now, limit: limit)
    }

    /// Stores without their own release them: requeued at once, the attempt spent.
    public func returnUnsentLeases(_ leases: [LeaseToken], executorID: String, reason: String, now: UnixMillis) async throws -> Int {
        try await releaseLeases(leases, executorID: executorID, sessionID: nil, reason: reason, now: now).count
    }

    /// Stores without their own leave lapsed leases to the reaper.
    public func lapseLeases(_ leases: [LeaseToken], executorID: String, sessionID: String?, reason: String, now: UnixMillis) async throws
        -> [ExpiredLease] { [] }
}

/// The event log: audit trail, watch source and outbox.
public protocol EventStore: Sendable {
    /// Events after `query.afterSequence`, in sequence order, at most `query.limit`.
    func events(_ query: EventQuery) async throws -> [StoredEvent]

    /// The sequence of the newest event (0 for none); nil when the store cannot tell, and then
    /// every watcher reads the store itself (`EventTail`).
    func latestSequence() async throws -> Int64?

    /// True when sequences become visible in order: a reader that sees an event sees every
    /// earlier one that will ever exist, so a hole in the sequence is permanent (rolled back or
    /// deleted) and nobody need wait for it to fill.
    var sequencesBecomeVisibleInOrder: Bool { get }
}

extension EventStore {
    public func latestSequence() async throws -> Int64? { nil }
    public var sequencesBecomeVisibleInOrder: Bool { false }
}

/// Why a waiting dispatcher or watcher should look again.
public enum ChangeSignal: Hashable, Sendable {
    /// Some tasks became ready (or claimable after backoff).
    case tasksReady
    /// Events up to this sequence were appended.
    case eventsAppended(upTo: Int64)
}

/// Cross-process wake-ups (PostgreSQL LISTEN/NOTIFY in production).
public protocol ChangeFeed: Sendable {
    /// A stream of signals; each subscriber gets every signal sent after it subscribed.
    func subscribe() -> AsyncStream<ChangeSignal>
}

/// What a workflow is, in a few columns (`WorkflowStore.workflowHead`).
/// How much of a workflow's query a read decodes.
public enum QueryGraphRead: Sendable, Hashable {
    /// The whole query, its explicit graph included (replays compare it).
    case whole
    /// The graph when it has at most this many tasks.
    case upTo(tasks: Int)
    /// Never the graph (the query's text, defaults and constraints only).
    case none

    /// What answers carrying a workflow read (GetWorkflow, CancelWorkflow, SubmitQuery's wait):
    /// a larger graph makes the answer slow to build and close to what a default client accepts;
    /// GetDag returns it. Every `Workflow` answer leaves such a graph out, however it was read.
    public static let answeredGraphTasks = 10_000
    public static let answered = QueryGraphRead.upTo(tasks: answeredGraphTasks)
}

extension WorkflowStore {
    /// The whole workflow, its query's graph included.
    public func workflow(id: String, tenant: String?) async throws -> WorkflowRecord? {
        try await workflow(id: id, tenant: tenant, queryGraph: .whole)
    }
}

public struct WorkflowHead: Sendable, Hashable {
    public var workflowID: String
    public var tenant: String
    public var state: WorkflowState
    public var currentDagVersion: Int

    public init(workflowID: String, tenant: String, state: WorkflowState, currentDagVersion: Int) {
        self.workflowID = workflowID
        self.tenant = tenant
        self.state = state
        self.currentDagVersion = currentDagVersion
    }
}
