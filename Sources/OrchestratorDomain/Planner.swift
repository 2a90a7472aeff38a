/// Turns a query into a validated, analysed DAG. Implementations: `ExplicitPlanner`, `CatalogPlanner`,
/// `DelegatedPlanner`; `PlannerRegistry` picks one per query.
public protocol Planner: Sendable {
    /// The name queries use in `plannerHint` and results report in `PlanningMetadata.planner`.
    var name: String { get }
    func plan(_ query: Query, context: PlanningContext) throws(PlanningError) -> PlanResult
}

/// What every planner may use besides the query: limits and a clock (injected so tests control time).
public struct PlanningContext: Sendable {
    public var limits: ValidationLimits
    public var now: @Sendable () -> ContinuousClock.Instant

    public init(limits: ValidationLimits = .default, now: @escaping @Sendable () -> ContinuousClock.Instant = { .now }) {
        self.limits = limits
        self.now = now
    }

    /// Validates and analyses a planner's graph, checks the query's constraints, and wraps it all in a
    /// `PlanResult` stamped with the time taken since `started`. `uncounted` tasks (a delegated
    /// planner's planning task) count toward neither `max_tasks` nor `max_total_cost`.
    public func finish(
        _ dag: Dag, planner: String, rationale: String, query: Query, started: ContinuousClock.Instant,
        alternatives: [String] = [], goals: [String] = [], uncounted: Set<TaskKey> = []
    ) throws(PlanningError) -> PlanResult {
        let graph: ValidatedDag
        do {
            graph = try DagValidator(limits: limits).validate(dag)
        } catch {
            throw PlanningError(
                .invalidGraph, "planner `\(planner)` produced an invalid graph: \(error)", issues: error.issues)
        }
        let analysis = GraphAnalysis(graph)
        let totalCost = dag.tasks.reduce(0) { $0 + $1.estimatedCost }
        if let first = query.constraints.countViolations(of: dag, uncounted: uncounted).first {
            throw PlanningError(.constraintViolated, first)
        }
        let metadata = PlanningMetadata(
            planner: planner, duration: now() - started, rationale: rationale, goals: goals,
            estimatedTotalCost: totalCost, criticalPathCost: analysis.criticalPath.length, alternatives: alternatives)
        return PlanResult(analysis: analysis, metadata: metadata)
    }
}

/// A plan: the validated DAG with its analysis, and how it was made.
public struct PlanResult: Sendable {
    public let analysis: GraphAnalysis
    public let metadata: PlanningMetadata

    public var graph: ValidatedDag { analysis.graph }
    public var dag: Dag { analysis.graph.dag }
}

/// How a plan was made, for logs, the API and the people reading them.
public struct PlanningMetadata: Hashable, Sendable {
    public var planner: String
    public var duration: Duration
    /// One paragraph: what was asked, what was chosen and why.
    public var rationale: String
    /// The goal artifacts planned for (catalog planner).
    public var goals: [String]
    /// Sum of the tasks' estimated costs.
    public var estimatedTotalCost: Double
    /// Length of the critical path: the least total cost any schedule must wait for.
    public var criticalPathCost: Double
    /// Choices the planner made between alternatives, one sentence each.
    public var alternatives: [String]
}
