public import Logging
public import NGRPC
public import OrchestratorAPI
public import OrchestratorApp
public import OrchestratorDomain
import OrchestratorTracing

/// `Workflows.PlanWorkflow`: decode the query, plan it, answer with the DAG, its analysis and how it was
/// planned. Stores nothing and needs no database.
///
/// The Workflows provider forwards to `planWorkflow(_:context:)`; SubmitQuery can call `plan(_:)` to get
/// the same decoding, constraint handling and plan before storing it.
public struct WorkflowsPlanningHandler: Sendable {
    public let registry: PlannerRegistry
    public let limits: ValidationLimits
    /// The catalog the catalog planner uses, to turn capability constraints into exclusions.
    public let catalog: CapabilityCatalog?
    let clock: any WallClock
    let logger: Logger
    /// Planning time and DAG sizes (docs/OBSERVABILITY.md); shared with the PlanningService it came from.
    var metrics: PlanningMetrics = .disabled

    public init(
        registry: PlannerRegistry, catalog: CapabilityCatalog?, limits: ValidationLimits = .default,
        clock: any WallClock = SystemWallClock(), logger: Logger = Logger(label: "orchestrator.grpc.planning")
    ) {
        self.registry = registry
        self.catalog = catalog
        self.limits = limits
        self.clock = clock
        self.logger = logger
    }

    /// Shares the application's planners and limits.
    public init(
        planning: PlanningService, catalog: CapabilityCatalog?, clock: any WallClock = SystemWallClock(),
        logger: Logger = Logger(label: "orchestrator.grpc.planning")
    ) {
        self.init(registry: planning.registry, catalog: catalog, limits: planning.limits, clock: clock, logger: logger)
        metrics = planning.metrics
    }

    /// The RPC: every failure leaves as an `RPCStatus` chosen by `StatusMapping`.
    public func planWorkflow(_ request: Orchestrator_V1_PlanWorkflowRequest, context: ServerContext) throws(RPCStatus)
        -> Orchestrator_V1_PlanWorkflowResponse
    {
        do {
            let planned = try plan(request.query)
            logger.debug(
                "planned",
                metadata: [
                    "planner": "\(planned.result.metadata.planner)", "tasks": "\(planned.result.dag.tasks.count)",
                    "trace_id": "\(context.trace.traceID)",
                ])
            return planned.response(createdAt: clock.now()).fittingDefaultClients()
        } catch {
            throw StatusMapping.status(for: error, logger: logger, method: context.method.path)
        }
    }

    /// Decodes and plans a query.
    ///
    /// - Throws: `RequestValidationError` listing every problem of the request (its fields and, when it
    ///   carries a graph, the graph's own problems too); `PlanningError` when planning fails.
    public func plan(_ proto: Orchestrator_V1_Query?) throws -> PlannedQuery {
        guard let proto else {
            throw RequestValidationError(
                subject: "invalid query",
                problems: [.init(code: ProblemCode.invalidQuery.rawValue, message: "the request has no query")])
        }
        var problems = ProblemList()
        let decoded = DecodedQuery(proto: proto, problems: &problems)
        if !problems.isEmpty {
            // Counted like a graph the planner refused: orchestrator_planning_failures_total is
            // every query that could not be planned, whichever check found it.
            metrics.recordFailure()
            throw rejection(decoded, problems)
        }

        var planningQuery = decoded.query
        let forbidden = decoded.query.constraints.excludedCapabilities
        planningQuery.constraints.excludedCapabilities = CapabilityConstraints.exclusions(
            forbidden: forbidden, allowed: decoded.allowedCapabilities, catalog: catalog)
        let span = TracingSystem.tracer.startSpan("plan")
        defer { span.end() }
        let result: PlanResult
        do {
            result = try metrics.recorded(registry.plan(planningQuery, context: PlanningContext(limits: limits)))
        } catch {
            metrics.recordFailure()
            span.setStatus(.error(String(describing: error)))
            throw error
        }
        span.setAttribute("orchestrator.planner", .string(result.metadata.planner))
        span.setAttribute("orchestrator.task_count", .int(result.dag.tasks.count))

        let violations = CapabilityConstraints.violations(in: result.dag, forbidden: forbidden, allowed: decoded.allowedCapabilities)
        if !violations.isEmpty {
            throw PlanningError(.constraintViolated, violations.joined(separator: "; "))
        }
        return PlannedQuery(decoded: decoded, result: result)
    }

    /// The request's field problems, plus the graph's own problems when it carries one, so one answer
    /// lists everything (the graph is validated here only when decoding already failed; otherwise the
    /// planner validates it).
    private func rejection(_ decoded: DecodedQuery, _ problems: ProblemList) -> RequestValidationError {
        var all = problems
        guard let graph = decoded.query.explicitGraph else {
            return RequestValidationError(subject: "invalid query", problems: all.problems, totalCount: all.totalCount)
        }
        var graphIsAtFault = problems.problems.contains { !$0.taskKeys.isEmpty }
        do {
            // Normalised as the explicit planner does: a repeated dependency is dropped, never
            // reported (it was, but only when some unrelated field was also wrong).
            _ = try DagValidator(limits: limits).validate(graph.removingDuplicateEdges().dag)
        } catch {
            graphIsAtFault = true
            all.append(contentsOf: error.issues.map(Orchestrator_V1_ValidationProblem.init), total: error.totalIssueCount)
        }
        // Problems of the query's own fields (failure_policy, constraints) are not the graph's.
        return RequestValidationError(subject: graphIsAtFault ? "invalid DAG" : "invalid query", problems: all.problems, totalCount: all.totalCount)
    }
}
