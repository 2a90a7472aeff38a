public import Logging
public import NGRPC
public import OrchestratorAPI
public import OrchestratorApp
import OrchestratorDomain
import OrchestratorTracing

/// `orchestrator.v1.Workflows`: decodes requests, calls the application services, and maps
/// results and typed errors to messages and status codes.
public struct WorkflowsService: Orchestrator_V1_WorkflowsProvider {
    let planning: WorkflowsPlanningHandler
    let submission: SubmissionService
    let updates: DagUpdateService
    let workflows: any WorkflowStore
    let watch: WatchService
    let dispatch: DispatchService
    let clock: any WallClock
    let logger: Logger
    /// Serves ListEvents; nil = UNIMPLEMENTED.
    let audit: AuditService?
    /// The largest answer this service builds (the server's max-send-message-size): GetWorkflow
    /// with `include_tasks` refuses a workflow whose tasks hold more, before reading them.
    let maxAnswerBytes: Int

    public init(
        planning: WorkflowsPlanningHandler, submission: SubmissionService, updates: DagUpdateService, workflows: any WorkflowStore,
        watch: WatchService, dispatch: DispatchService, audit: (any AuditLog)? = nil, clock: any WallClock = SystemWallClock(),
        maxAnswerBytes: Int = 64 << 20, logger: Logger = Logger(label: "orchestrator.grpc.workflows")
    ) {
        self.maxAnswerBytes = maxAnswerBytes
        self.audit = audit.map(AuditService.init(log:))
        self.planning = planning
        self.submission = submission
        self.updates = updates
        self.workflows = workflows
        self.watch = watch
        self.dispatch = dispatch
        self.clock = clock
        self.logger = logger
    }

    func mapped<T>(_ context: ServerContext, _ body: () async throws -> T) async throws(RPCStatus) -> T {
        try await mappingErrors(context, logger: logger, body)
    }

    public func planWorkflow(_ request: Orchestrator_V1_PlanWorkflowRequest, context: ServerContext) async throws -> Orchestrator_V1_PlanWorkflowResponse {
        try planning.planWorkflow(request, context: context)
    }

    public func submitQuery(_ request: Orchestrator_V1_SubmitQueryRequest, context: ServerContext) async throws -> Orchestrator_V1_SubmitQueryResponse {
        try await mapped(context) {
            let (outcome, payloads) = try await submitWithPayloads(requestID: request.requestID, query: request.query, context: context)
            var workflow = outcome.workflow
            if request.wait, !workflow.state.isTerminal {
                workflow = try await submission.waitForOutcome(workflowID: workflow.workflowID, tenant: workflow.tenant)
            }
            // The DAG with its tasks' payloads, as GetDag returns it: those submitted, or on a
            // replay those stored (returned without them, a client checking what it sent saw
            // empty payloads; found by black-box testing).
            let stored = outcome.created ? payloads : try await currentPayloads(of: outcome.workflow.workflowID)
            return Orchestrator_V1_SubmitQueryResponse(
                workflow: Orchestrator_V1_Workflow(workflow, now: clock.now()),
                dag: outcome.dag.map { Orchestrator_V1_Dag($0, payloads: stored) },
                analysis: outcome.analysis.map(Orchestrator_V1_DagAnalysis.init),
                created: outcome.created
            ).fittingDefaultClients()
        }
    }

    /// `trace` defaults to the call's own (SubmitStream passes a query's own traceparent).
    func submit(
        requestID: String, query: Orchestrator_V1_Query?, context: ServerContext, trace: SubmittedTrace? = nil
    ) async throws -> SubmitOutcome {
        try await submitWithPayloads(requestID: requestID, query: query, context: context, trace: trace).outcome
    }

    /// `submit`, and the payloads of the submitted tasks by key.
    func submitWithPayloads(
        requestID: String, query: Orchestrator_V1_Query?, context: ServerContext, trace: SubmittedTrace? = nil
    ) async throws -> (outcome: SubmitOutcome, payloads: [TaskKey: [UInt8]]) {
        let trace = trace ?? SubmittedTrace(context.trace)
        let planned = try planning.plan(query)
        let command = SubmitCommand(
            requestID: requestID.isEmpty ? nil : requestID, query: planned.decoded.query,
            failurePolicy: planned.decoded.failurePolicy, payloads: planned.payloads,
            actor: CallerIdentity.actor(of: context), traceID: trace.traceID, traceState: trace.traceState,
            traceSampled: trace.sampled)
        return (try await submission.submit(command, plan: planned.result), planned.payloads)
    }

    /// The payloads of a workflow's current tasks, by key.
    func currentPayloads(of workflowID: String) async throws -> [TaskKey: [UInt8]] {
        var payloads: [TaskKey: [UInt8]] = [:]
        for task in try await workflows.tasks(workflowID: workflowID) { payloads[task.spec.key] = task.payload }
        return payloads
    }

    public func getWorkflow(_ request: Orchestrator_V1_GetWorkflowRequest, context: ServerContext) async throws -> Orchestrator_V1_GetWorkflowResponse {
        try await mapped(context) {
            let record = try await existingWorkflow(request.workflowID, context: context, queryGraph: .answered)
            guard request.includeTasks else {
                return Orchestrator_V1_GetWorkflowResponse(workflow: Orchestrator_V1_Workflow(record, now: clock.now()).fittingDefaultClients())
            }
            // Measured first: the answer costs about three times its size in memory while it is
            // built and sent, and one call on a workflow of large results took 250 MB for a 95 MB
            // answer (found by black-box testing); ListTasks reads any workflow in bounded pages.
            let bytes = try await workflows.taskBytes(workflowID: record.workflowID)
            if bytes > maxAnswerBytes {
                throw AppError.resourceExhausted(
                    "workflow \(record.workflowID)'s tasks hold \(bytes) bytes (specs, payloads and results), more than one answer may carry "
                        + "(\(maxAnswerBytes) bytes, max-send-message-size): read them with ListTasks, a page at a time")
            }
            async let tasks = workflows.tasks(workflowID: record.workflowID)
            async let dag = workflows.dagVersion(workflowID: record.workflowID, version: nil)
            return Orchestrator_V1_GetWorkflowResponse(
                workflow: Orchestrator_V1_Workflow(record, tasks: try await tasks, dag: try await dag?.dag, now: clock.now())
                    .fittingDefaultClients())
        }
    }

    public func listWorkflows(_ request: Orchestrator_V1_ListWorkflowsRequest, context: ServerContext) async throws -> Orchestrator_V1_ListWorkflowsResponse {
        try await mapped(context) {
            guard (0...1000).contains(request.pageSize) else {
                throw AppError.invalidArgument("page_size must be between 1 and 1000 (0 = 100), got \(request.pageSize)")
            }
            try APIDefaults.checkInstant(request.createdAfterUnixMs, field: "created_after_unix_ms")
            try APIDefaults.checkInstant(request.createdBeforeUnixMs, field: "created_before_unix_ms")
            if request.createdAfterUnixMs > 0, request.createdBeforeUnixMs > 0, request.createdBeforeUnixMs <= request.createdAfterUnixMs {
                throw AppError.invalidArgument(
                    "created_before_unix_ms (\(request.createdBeforeUnixMs)) must be after created_after_unix_ms (\(request.createdAfterUnixMs))")
            }
            var states = Set<WorkflowState>()
            for state in request.states {
                guard let domain = state.domainState else {
                    throw AppError.invalidArgument("states contains \(state.rawValue), which is not an orchestrator.v1.WorkflowState this server lists")
                }
                states.insert(domain)
            }
            let page = try await workflows.listWorkflows(WorkflowListQuery(
                tenant: CallerIdentity.tenantScope(of: context), states: states, labels: request.labels,
                createdAfter: request.createdAfterUnixMs > 0 ? request.createdAfterUnixMs : nil,
                createdBefore: request.createdBeforeUnixMs > 0 ? request.createdBeforeUnixMs : nil,
                pageSize: request.pageSize == 0 ? 100 : Int(request.pageSize),
                pageToken: request.pageToken.isEmpty ? nil : request.pageToken))
            let now = clock.now()
            return Orchestrator_V1_ListWorkflowsResponse(
                workflows: page.workflows.map { Orchestrator_V1_Workflow($0, now: now).withoutQueryGraph() },
                nextPageToken: page.nextPageToken ?? "")
        }
    }

    public func getDag(_ request: Orchestrator_V1_GetDagRequest, context: ServerContext) async throws -> Orchestrator_V1_GetDagResponse {
        try await mapped(context) {
            guard request.version >= 0 else { throw AppError.invalidArgument("version must be ≥ 0 (0 = current), got \(request.version)") }
            let record = try await existingWorkflowHead(request.workflowID, context: context)
            let wanted = request.version == 0 ? record.currentDagVersion : Int(request.version)
            guard let version = try await workflows.dagVersion(workflowID: record.workflowID, version: wanted) else {
                throw AppError.notFound("workflow \(record.workflowID) has no DAG version \(wanted) (current: \(record.currentDagVersion))")
            }
            let history = try await workflows.dagHistory(workflowID: record.workflowID)
            let tasks = wanted == record.currentDagVersion ? try await workflows.tasks(workflowID: record.workflowID) : []
            var payloads: [TaskKey: [UInt8]] = [:]
            for task in tasks { payloads[task.spec.key] = task.payload }
            var analysis: Orchestrator_V1_DagAnalysis?
            if let validated = try? DagValidator(limits: planning.limits).validate(version.dag) {
                analysis = Orchestrator_V1_DagAnalysis(GraphAnalysis(validated))
            }
            var upstream: [TaskKey: [TaskKey]] = [:]
            for edge in version.dag.edges { upstream[edge.to, default: []].append(edge.from) }
            let now = clock.now()
            return Orchestrator_V1_GetDagResponse(
                dag: Orchestrator_V1_Dag(version, payloads: payloads), analysis: analysis,
                versions: history.map(Orchestrator_V1_DagVersionInfo.init),
                tasks: tasks.map { Orchestrator_V1_Task($0, dependsOn: upstream[$0.spec.key] ?? [], now: now) }
            ).fittingDefaultClients()
        }
    }

    public func updateDag(_ request: Orchestrator_V1_UpdateDagRequest, context: ServerContext) async throws -> Orchestrator_V1_UpdateDagResponse {
        try await mapped(context) {
            var (change, fieldProblems) = DagChangeDecoding.decodeCollectingProblems(request)
            // The request's own problems come first, whatever the workflow (docs: UpdateDag).
            if change.isEmpty { fieldProblems.add(.invalidField, DagChange.changesNothing) }
            if request.expectedVersion < 1 { fieldProblems.add(.invalidField, DagChange.versionRequired) }
            let own = updates.ownProblems(of: change)
            fieldProblems.append(contentsOf: own.map(Orchestrator_V1_ValidationProblem.init))
            if !fieldProblems.isEmpty {
                // One answer lists everything: what the graph the change leaves would get wrong too
                // (only the first kind was reported; found by black-box testing).
                var all = fieldProblems
                if !request.workflowID.isEmpty, let record = try? await existingWorkflowHead(request.workflowID, context: context) {
                    let more = DagChange.withoutRepeats(await updates.problems(
                        workflowID: record.workflowID, tenant: record.tenant, expectedVersion: Int(request.expectedVersion), change: change),
                        of: own)
                    all.append(contentsOf: more.map(Orchestrator_V1_ValidationProblem.init), total: more.count)
                }
                throw RequestValidationError(subject: "invalid DAG update", problems: all.problems, totalCount: all.totalCount)
            }
            let record = try await existingWorkflowHead(request.workflowID, context: context)
            let (version, analysis) = try await updates.update(
                workflowID: record.workflowID, tenant: record.tenant, expectedVersion: Int(request.expectedVersion), change: change,
                reason: request.reason, actor: CallerIdentity.actor(of: context))
            return Orchestrator_V1_UpdateDagResponse(
                dag: Orchestrator_V1_Dag(version, payloads: change.payloads), analysis: Orchestrator_V1_DagAnalysis(analysis),
                dagVersion: Int32(clamping: version.version)
            ).fittingDefaultClients()
        }
    }

    public func cancelWorkflow(_ request: Orchestrator_V1_CancelWorkflowRequest, context: ServerContext) async throws -> Orchestrator_V1_CancelWorkflowResponse {
        try await mapped(context) {
            let record = try await existingWorkflowHead(request.workflowID, context: context)
            let reason = request.reason.isEmpty ? "cancelled by \(CallerIdentity.actor(of: context).subject)" : request.reason
            let result = try await workflows.cancelWorkflow(
                id: record.workflowID, tenant: record.tenant, reason: reason, actor: CallerIdentity.actor(of: context), now: clock.now())
            dispatch.revoke(result.revokedLeases.map(\.lease), reason: "workflow cancelled: \(reason)")
            return Orchestrator_V1_CancelWorkflowResponse(
                workflow: Orchestrator_V1_Workflow(result.workflow, now: clock.now()).fittingDefaultClients())
        }
    }

    public func watchWorkflow(
        _ request: Orchestrator_V1_WatchWorkflowRequest, responses: RPCResponseWriter<Orchestrator_V1_WorkflowEvent>, context: ServerContext
    ) async throws {
        try await mapped(context) {
            guard request.afterSequence >= 0 else { throw AppError.invalidArgument("after_sequence must be ≥ 0") }
            // A watch of every workflow has no final event: it was silently ignored and the
            // stream never ended (found by black-box testing).
            guard !(request.stopWhenFinished && request.workflowID.isEmpty) else {
                throw AppError.invalidArgument("stop_when_finished needs a workflow_id: a watch of every workflow has no final event")
            }
            var tenant = CallerIdentity.tenantScope(of: context)
            var workflowID: String?
            var finishedAtStart = false
            if !request.workflowID.isEmpty {
                // Its head only: the whole record decodes the query's graph (100,000 tasks: +250 MB
                // per watcher; found by black-box testing).
                guard let head = try await workflows.workflowHead(id: request.workflowID, tenant: tenant) else {
                    throw AppError.notFound("workflow \(request.workflowID) not found")
                }
                workflowID = head.workflowID
                tenant = head.tenant
                // Its terminal event is already stored: replay what is after the cursor and end,
                // even when the cursor is past that event (a watcher resuming after the end).
                finishedAtStart = head.state.isTerminal
            }
            let stopWhenFinished = request.stopWhenFinished
            var finishedMeanwhile: (@Sendable () async throws -> Bool)?
            if stopWhenFinished, request.afterSequence > 0, !finishedAtStart, let workflowID {
                // A resume point past every event of the running workflow: asked until one arrives.
                let workflows = self.workflows
                let scope = tenant
                finishedMeanwhile = { try await workflows.workflowHead(id: workflowID, tenant: scope)?.state.isTerminal ?? true }
            }
            // A workflow deleted by retention while watched ends its watch NOT_FOUND, as a new
            // watch of it is answered: its events vanished under the watcher, which ended OK
            // without the final event (or halfway through the replay), or never ended at all
            // (found by black-box testing).
            let progress = WorkflowWatchState(finished: finishedAtStart)
            var gone: (@Sendable () async throws -> Void)?
            if let workflowID {
                let workflows = self.workflows
                let scope = tenant
                gone = {
                    guard progress.shouldCheckAfterIdlePeriod(), try await workflows.workflowHead(id: workflowID, tenant: scope) == nil
                    else { return }
                    throw Self.deletedWhileWatched(workflowID)
                }
            }
            try await watch.follow(
                EventQuery(afterSequence: request.afterSequence, workflowID: workflowID, tenant: tenant),
                stopWhen: { stopWhenFinished && $0.isWorkflowTerminal },
                endWhenCaughtUp: stopWhenFinished && finishedAtStart,
                finishedMeanwhile: finishedMeanwhile, gone: gone,
                emit: { event in
                    if event.isWorkflowTerminal { progress.finalDelivered() }
                    try await responses.write(Orchestrator_V1_WorkflowEvent(event))
                })
            // Ended without the final event: caught up past it (a resume after the end), or the
            // workflow and its events are gone.
            if stopWhenFinished, !progress.sentFinal, let workflowID,
                try await workflows.workflowHead(id: workflowID, tenant: tenant) == nil
            {
                throw Self.deletedWhileWatched(workflowID)
            }
        }
    }

    static func deletedWhileWatched(_ workflowID: String) -> AppError {
        AppError.notFound("workflow \(workflowID) not found: it was deleted (retention) while it was watched")
    }

    func existingWorkflow(_ id: String, context: ServerContext, queryGraph: QueryGraphRead) async throws -> WorkflowRecord {
        guard !id.isEmpty else { throw AppError.invalidArgument("workflow_id is required") }
        guard let record = try await workflows.workflow(id: id, tenant: CallerIdentity.tenantScope(of: context), queryGraph: queryGraph) else {
            throw AppError.notFound("workflow \(id) not found")
        }
        return record
    }

    /// For calls that need only the workflow's id, tenant, state or version: no query, no counts.
    func existingWorkflowHead(_ id: String, context: ServerContext) async throws -> WorkflowHead {
        guard !id.isEmpty else { throw AppError.invalidArgument("workflow_id is required") }
        guard let head = try await workflows.workflowHead(id: id, tenant: CallerIdentity.tenantScope(of: context)) else {
            throw AppError.notFound("workflow \(id) not found")
        }
        return head
    }
}

/// Serialises writes from several tasks onto one response stream.
actor SerialWriter<Message: GRPCMessage> {
    let writer: RPCResponseWriter<Message>
    init(_ writer: RPCResponseWriter<Message>) { self.writer = writer }
    func write(_ message: Message) async throws { try await writer.write(message) }
}
