import Logging
import OrchestratorDomain
import OrchestratorTracing

/// A query to plan, store and start.
public struct SubmitCommand: Sendable {
    public var requestID: String?
    public var query: Query
    public var failurePolicy: FailurePolicy
    /// Executor input per task key, for explicit graphs.
    public var payloads: [TaskKey: [UInt8]]
    public var actor: Actor
    public var traceID: String
    /// The caller's W3C `tracestate` header, as received; kept with the workflow when valid.
    public var traceState: String?
    /// The sampled flag of the caller's `traceparent`; nil when the trace was started here (the
    /// server's sampler decides).
    public var traceSampled: Bool?

    public init(
        requestID: String?, query: Query, failurePolicy: FailurePolicy = .failFast, payloads: [TaskKey: [UInt8]] = [:], actor: Actor,
        traceID: String, traceState: String? = nil, traceSampled: Bool? = nil
    ) {
        self.requestID = requestID
        self.query = query
        self.failurePolicy = failurePolicy
        self.payloads = payloads
        self.actor = actor
        self.traceID = traceID
        self.traceState = traceState
        self.traceSampled = traceSampled
    }
}

/// What a submission produced.
public struct SubmitOutcome: Sendable {
    public var workflow: WorkflowRecord
    public var dag: StoredDagVersion?
    /// The analysis of `dag`; on a replay (`created` false) computed from the stored version, so a
    /// client retrying after a lost answer gets the same shape of response.
    public var analysis: GraphAnalysis?
    /// False when the request id matched an existing workflow.
    public var created: Bool
}

/// Plans a query, stores the workflow with its first DAG version, and (on request) waits for it
/// to finish.
public struct SubmissionService: Sendable {
    let planning: PlanningService
    let workflows: any WorkflowStore
    let watch: WatchService
    let signals: ChangeSignals
    let clock: any WallClock
    let ids: any IdentifierGenerator
    let logger: Logger
    /// Hands new tasks to idle executor streams of this process as they are stored (nil: every
    /// task is stored ready and claimed).
    let direct: (any DirectDispatching)?
    let budget: AssignmentBudget

    public init(
        planning: PlanningService, workflows: any WorkflowStore, watch: WatchService, signals: ChangeSignals,
        clock: any WallClock = SystemWallClock(), ids: any IdentifierGenerator = RandomIdentifierGenerator(),
        logger: Logger = Logger(label: "orchestrator.submission"), direct: (any DirectDispatching)? = nil,
        budget: AssignmentBudget = AssignmentBudget(maxAssignmentBytes: nil)
    ) {
        self.direct = direct
        self.budget = budget
        self.planning = planning
        self.workflows = workflows
        self.watch = watch
        self.signals = signals
        self.clock = clock
        self.ids = ids
        self.logger = logger
    }

    /// Plans (unless `plan` is given: the edge may have planned already while decoding) and
    /// stores the workflow; idempotent by `command.requestID`.
    public func submit(_ command: SubmitCommand, plan given: PlanResult? = nil) async throws -> SubmitOutcome {
        if let requestID = command.requestID {
            try Self.validateRequestID(requestID)
        }
        let plan = try given ?? planning.plan(command.query)
        try budget.check(tasks: plan.dag.tasks, payloads: command.payloads, inputs: command.query.providedInputs)
        var ranks: [TaskKey: Double] = [:]
        ranks.reserveCapacity(plan.dag.tasks.count)
        for key in plan.analysis.graph.index.keys {
            ranks[key] = plan.analysis.rank(of: key)
        }
        let metadata = plan.metadata
        let record = PlanningRecord(
            planner: metadata.planner, durationMicros: Int64(metadata.duration.components.seconds) * 1_000_000
                + Int64(metadata.duration.components.attoseconds / 1_000_000_000_000),
            rationale: metadata.rationale, warnings: metadata.alternatives, totalCost: metadata.estimatedTotalCost)
        var new = NewWorkflow(
            workflowID: ids.make(prefix: "wf"), tenant: command.actor.tenant, requestID: command.requestID,
            query: command.query, dag: plan.dag, payloads: command.payloads, ranks: ranks, planning: record,
            failurePolicy: command.failurePolicy, traceID: command.traceID, labels: command.query.labels,
            priority: command.query.priority, actor: command.actor, now: clock.now())
        new.traceState = TraceState.propagated(command.traceState)
        new.traceSampled = command.traceSampled ?? TracingSystem.tracer.sampler.shouldSample(traceID: command.traceID)
        // A delegated plan is a planning task, not the work: the workflow stays PLANNING until
        // the graph that task proposes is adopted (PlanAdoptionService).
        new.awaitingPlan = metadata.planner == DelegatedPlanner.defaultName
        // Not for a delegated plan: its planning task's answer is reviewed on completion, which
        // the lease table arranges for claims only.
        let reservation = new.awaitingPlan ? nil : direct?.reserveIdle(for: plan.dag, tenant: new.tenant, priority: new.priority, ranks: ranks)
        new.directLeases = reservation?.leases ?? [:]
        // The span every later span of this workflow hangs from (dispatch, in any server process):
        // its id is derived from the workflow id, which is all they need to name it.
        let tracer = TracingSystem.tracer
        let workflowSpan = tracer.startSpan(
            "workflow.submit", spanID: TraceIdentifiers.derivedSpanID(from: new.workflowID),
            attributes: ["orchestrator.workflow_id": .string(new.workflowID), "orchestrator.task_count": .int(plan.dag.tasks.count),
                         "orchestrator.planner": .string(metadata.planner)])
        let stored: CreatedWorkflow
        do {
            stored = try await tracer.run(workflowSpan) { span in
                let stored = try await workflows.createWorkflow(new)
                span.setAttribute("orchestrator.created", .bool(stored.created))
                return stored
            }
        } catch {
            if let reservation { direct?.cancel(reservation) }
            if let error = error as? StoreError { throw AppError(error) }
            throw error
        }
        if let reservation { await direct?.deliver(reservation, leased: stored.leased) }
        signals.signal(.tasksReady)
        if stored.created {
            logger.info("workflow submitted", metadata: [
                "workflow_id": "\(stored.workflow.workflowID)", "trace_id": "\(command.traceID)",
                "tasks": "\(plan.dag.tasks.count)", "planner": "\(metadata.planner)",
            ])
            // As stored (`createWorkflow`): the answer and a later GetDag or replay show the same version.
            let version = StoredDagVersion(
                workflowID: stored.workflow.workflowID, version: stored.workflow.currentDagVersion, dag: plan.dag,
                reason: "submitted", author: command.actor.subject, createdAt: new.now)
            return SubmitOutcome(workflow: stored.workflow, dag: version, analysis: plan.analysis, created: true)
        }
        // A replay must be the same request: a key reused for another query would otherwise
        // answer with a workflow that is not the one asked for, and the caller would never know
        // its query was not run. (Payload bytes are not part of the stored query and not compared.)
        guard Self.asPlanned(stored.workflow.query) == Self.asPlanned(command.query), stored.workflow.failurePolicy == command.failurePolicy
        else {
            throw AppError.alreadyExists(
                "request_id \"\(command.requestID ?? "")\" was already used for a different query (workflow \(stored.workflow.workflowID)); "
                    + "use a new request_id for a new query")
        }
        let version = try await workflows.dagVersion(workflowID: stored.workflow.workflowID, version: nil)
        let analysis = version.flatMap { try? DagValidator(limits: planning.limits).validate($0.dag) }.map(GraphAnalysis.init)
        return SubmitOutcome(workflow: stored.workflow, dag: version, analysis: analysis, created: false)
    }

    /// A query as replays compare it: a graph that names no planner is planned by the explicit
    /// planner, so naming it changes nothing (a client filling in that default on a retry was
    /// answered ALREADY_EXISTS, while the failure policy's default was already taken as the same;
    /// found by black-box testing). Lists whose order means nothing compare as sets: goals, the
    /// graph's tasks and edges (`depends_on`), a task's capabilities, inputs and outputs — a
    /// client rebuilding its retry from a hash set sent them in another order and was refused
    /// (found by black-box testing).
    static func asPlanned(_ query: Query) -> Query {
        var query = query
        if query.explicitGraph != nil, query.plannerHint == nil { query.plannerHint = ExplicitPlanner.defaultName }
        if let goal = query.goal { query.goal = Goal(artifacts: Array(Set(goal.artifacts)).sorted()) }
        if var graph = query.explicitGraph {
            graph.tasks = graph.tasks.map { task in
                var task = task
                task.requiredCapabilities = Array(Set(task.requiredCapabilities)).sorted()
                task.inputs = Array(Set(task.inputs)).sorted()
                task.outputs = Array(Set(task.outputs)).sorted()
                return task
            }.sorted { $0.key.rawValue < $1.key.rawValue }
            graph.edges = Array(Set(graph.edges)).sorted { ($0.from.rawValue, $0.to.rawValue) < ($1.from.rawValue, $1.to.rawValue) }
            query.explicitGraph = graph
        }
        return query
    }

    /// Waits until the workflow reaches a terminal state, then returns it. Cancelling the calling
    /// task (the caller's deadline) stops the wait; the workflow keeps running.
    public func waitForOutcome(workflowID: String, tenant: String?) async throws -> WorkflowRecord {
        if let current = try await workflows.workflow(id: workflowID, tenant: tenant, queryGraph: .answered), current.state.isTerminal {
            return current
        }
        do {
            try await watch.follow(EventQuery(afterSequence: 0, workflowID: workflowID, tenant: tenant), stopWhen: { event in
                event.isWorkflowTerminal
            }, emit: { _ in })
        } catch is WatchInterrupted {
            throw AppError.unavailable(
                "orchestratord is shutting down; workflow \(workflowID) is stored and goes on: follow it with GetWorkflow or WatchWorkflow")
        } catch let unavailable as WatchStorageUnavailable {
            throw AppError.storageUnavailable(unavailable.reason)
        }
        guard let finished = try await workflows.workflow(id: workflowID, tenant: tenant, queryGraph: .answered) else {
            throw AppError.notFound("workflow \(workflowID) not found")
        }
        return finished
    }

    /// Request ids are idempotency keys: 1-128 printable ASCII characters.
    static func validateRequestID(_ id: String) throws(AppError) {
        guard (1...128).contains(id.utf8.count), id.utf8.allSatisfy({ $0 >= 0x21 && $0 <= 0x7e }) else {
            throw AppError.invalidArgument("request_id must be 1-128 printable ASCII characters without spaces")
        }
    }
}
