/// Plans a query that carries its own graph: normalise, validate, analyse.
///
/// Normalisation: duplicate edges are dropped; tasks without a priority take the query's; the query's
/// labels are added to every task that does not set the same label; tasks without a rationale say they
/// were given by the query. Nothing else is changed: keys, costs and edges are the author's.
public struct ExplicitPlanner: Planner {
    public static let defaultName = "explicit"
    public let name: String

    public init(name: String = ExplicitPlanner.defaultName) { self.name = name }

    public func plan(_ query: Query, context: PlanningContext) throws(PlanningError) -> PlanResult {
        let started = context.now()
        guard let graph = query.explicitGraph else {
            throw PlanningError(
                .invalidQuery, "planner `\(name)` needs a graph in the query (its `graph` is empty)")
        }
        var (dag, removed) = graph.removingDuplicateEdges()
        for i in dag.tasks.indices {
            dag.tasks[i] = query.inherited(by: dag.tasks[i])
            if dag.tasks[i].rationale.isEmpty { dag.tasks[i].rationale = "given in the query's graph" }
        }
        var rationale = "graph supplied by the query: \(Self.count(dag.tasks.count, "task")), \(Self.count(dag.edges.count, "edge"))"
        if removed > 0 { rationale += "; \(removed) duplicate edge\(removed == 1 ? "" : "s") dropped" }
        return try context.finish(dag, planner: name, rationale: rationale, query: query, started: started)
    }

    /// "1 edge", "2 edges".
    static func count(_ number: Int, _ noun: String) -> String { "\(number) \(noun)\(number == 1 ? "" : "s")" }
}
