import Foundation
import OrchestratorApp
import PostgresClient

/// The whole storage contract on one PostgreSQL database: a façade over the four repositories,
/// for the composition root (one value to inject wherever a store protocol is needed).
public final class PostgresStore: WorkflowStore, TaskDispatchStore, EventStore, ChangeFeed {
    public let workflows: PostgresWorkflowStore
    public let dispatch: PostgresDispatchStore
    public let eventLog: PostgresEventStore
    public let changeFeed: PostgresChangeFeed

    /// - Parameters:
    ///   - pool: connections for the repositories.
    ///   - conninfo: the same database, for the change feed's dedicated LISTEN connection.
    public init(pool: PostgresPool, conninfo: String, configuration: StoreConfiguration = StoreConfiguration()) throws {
        workflows = PostgresWorkflowStore(pool: pool, configuration: configuration)
        dispatch = PostgresDispatchStore(pool: pool, configuration: configuration)
        eventLog = PostgresEventStore(pool: pool, configuration: configuration)
        changeFeed = try PostgresChangeFeed(conninfo: conninfo, configuration: configuration)
    }

    /// Starts the change feed's LISTEN.
    public func start() async throws { try await changeFeed.start() }

    public func close() { changeFeed.close() }

    // MARK: WorkflowStore

    public func createWorkflow(_ workflow: NewWorkflow) async throws -> CreatedWorkflow { try await workflows.createWorkflow(workflow) }
    public func workflow(id: String, tenant: String?, queryGraph: QueryGraphRead) async throws -> WorkflowRecord? {
        try await workflows.workflow(id: id, tenant: tenant, queryGraph: queryGraph)
    }
    public func workflowHead(id: String, tenant: String?) async throws -> WorkflowHead? { try await workflows.workflowHead(id: id, tenant: tenant) }
    public func listWorkflows(_ query: WorkflowListQuery) async throws -> WorkflowPage { try await workflows.listWorkflows(query) }
    public func dagVersion(workflowID: String, version: Int?) async throws -> StoredDagVersion? {
        try await workflows.dagVersion(workflowID: workflowID, version: version)
    }
    public func dagHistory(workflowID: String) async throws -> [DagVersionSummary] { try await workflows.dagHistory(workflowID: workflowID) }
    public func tasks(workflowID: String) async throws -> [StoredTask] { try await workflows.tasks(workflowID: workflowID) }
    public func taskPage(_ query: TaskPageQuery) async throws -> TaskPage { try await workflows.taskPage(query) }
    public func taskBytes(workflowID: String) async throws -> Int { try await workflows.taskBytes(workflowID: workflowID) }
    public func updateDag(_ update: DagUpdate) async throws -> StoredDagVersion { try await workflows.updateDag(update) }
    public func cancelWorkflow(id: String, tenant: String?, reason: String, actor: Actor, now: UnixMillis) async throws -> CancellationResult {
        try await workflows.cancelWorkflow(id: id, tenant: tenant, reason: reason, actor: actor, now: now)
    }

    // MARK: TaskDispatchStore

    public func claimTasks(_ request: ClaimRequest) async throws -> [ClaimedTask] { try await dispatch.claimTasks(request) }
    public func report(_ report: TaskReport) async throws -> ReportResult { try await dispatch.report(report) }
    public func extendLeases(_ extensions: [LeaseExtension]) async throws -> [LeaseState] { try await dispatch.extendLeases(extensions) }
    public func expireLeases(now: UnixMillis, limit: Int) async throws -> [ExpiredLease] {
        try await dispatch.expireLeases(now: now, expiredBefore: now, limit: limit)
    }
    public func expireLeases(now: UnixMillis, expiredBefore: UnixMillis, limit: Int) async throws -> [ExpiredLease] {
        try await dispatch.expireLeases(now: now, expiredBefore: expiredBefore, limit: limit)
    }
    public func releaseLeases(_ leases: [LeaseToken], executorID: String, sessionID: String?, reason: String, now: UnixMillis) async throws
        -> [ExpiredLease]
    {
        try await dispatch.releaseLeases(leases, executorID: executorID, sessionID: sessionID, reason: reason, now: now)
    }
    public func lapseLeases(_ leases: [LeaseToken], executorID: String, sessionID: String?, reason: String, now: UnixMillis) async throws
        -> [ExpiredLease]
    {
        try await dispatch.lapseLeases(leases, executorID: executorID, sessionID: sessionID, reason: reason, now: now)
    }
    public func returnUnsentLeases(_ leases: [LeaseToken], executorID: String, reason: String, now: UnixMillis) async throws -> Int {
        try await dispatch.returnUnsentLeases(leases, executorID: executorID, reason: reason, now: now)
    }

    // MARK: EventStore, ChangeFeed

    public func events(_ query: EventQuery) async throws -> [StoredEvent] { try await eventLog.events(query) }
    public func latestSequence() async throws -> Int64? { try await eventLog.latestSequence() }
    public var sequencesBecomeVisibleInOrder: Bool { eventLog.sequencesBecomeVisibleInOrder }
    public func subscribe() -> AsyncStream<ChangeSignal> { changeFeed.subscribe() }
}
