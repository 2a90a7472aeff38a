/// The planners a server offers, and the rule that picks one per query:
///
/// 1. a query carrying an explicit graph goes to `explicit` (a hint naming another planner is an error:
///    the query contradicts itself);
/// 2. otherwise a `plannerHint` names the planner;
/// 3. otherwise `catalog` if registered, else `delegated` if registered.
public struct PlannerRegistry: Sendable {
    public private(set) var planners: [any Planner]

    public init(_ planners: [any Planner]) { self.planners = planners }

    public var names: [String] { planners.map(\.name) }

    public func planner(named name: String) -> (any Planner)? { planners.first { $0.name == name } }

    public func select(for query: Query) throws(PlanningError) -> any Planner {
        if query.explicitGraph != nil {
            if let hint = query.plannerHint, hint != ExplicitPlanner.defaultName {
                throw PlanningError(
                    .invalidQuery,
                    "the query carries an explicit graph but asks for planner `\(hint)`; drop the graph or the hint")
            }
            return try require(ExplicitPlanner.defaultName)
        }
        if let hint = query.plannerHint { return try require(hint) }
        for name in [CatalogPlanner.defaultName, DelegatedPlanner.defaultName] {
            if let planner = planner(named: name) { return planner }
        }
        throw PlanningError(
            .unknownPlanner, "no planner can take this query (registered: \(names.joined(separator: ", ")))")
    }

    /// Selects a planner and plans.
    public func plan(_ query: Query, context: PlanningContext) throws(PlanningError) -> PlanResult {
        try select(for: query).plan(query, context: context)
    }

    private func require(_ name: String) throws(PlanningError) -> any Planner {
        guard let planner = planner(named: name) else {
            throw PlanningError(
                .unknownPlanner,
                "planner `\(name)` is not available (registered: \(names.joined(separator: ", ")))")
        }
        return planner
    }
}
