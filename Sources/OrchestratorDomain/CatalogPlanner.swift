/// Plans a query from a capability catalog: goals from the query (structured goal, or intent rules over
/// its text), inputs from the query and the catalog's implicit inputs, then `CatalogSearch` for the
/// cheapest set of steps. Every task says why it is in the plan; every choice between alternatives is
/// explained; an unreachable goal names the missing artifacts.
public struct CatalogPlanner: Planner {
    public static let defaultName = "catalog"
    public let name: String
    public let catalog: CapabilityCatalog
    /// Most alternatives the exact search may try before settling for the best plan found so far.
    public var searchBudget: Int

    public init(catalog: CapabilityCatalog, name: String = CatalogPlanner.defaultName, searchBudget: Int = 50_000) {
        self.catalog = catalog
        self.name = name
        self.searchBudget = searchBudget
    }

    public func plan(_ query: Query, context: PlanningContext) throws(PlanningError) -> PlanResult {
        let started = context.now()
        let (goals, goalReason) = try goals(for: query)
        let provided = Set(query.providedInputs.keys)
        let available = provided.union(catalog.implicitInputs)
        let alreadyThere = goals.filter { available.contains($0) }
        if alreadyThere.count == goals.count {
            throw PlanningError(
                .invalidQuery, "every goal artifact is already provided (\(list(alreadyThere))); there is nothing to plan")
        }
        let excluded = query.constraints.excludedCapabilities
        let usable = catalog.capabilities.filter { !excluded.contains($0.name) }
        var search = CatalogSearch(
            capabilities: usable, available: available, budget: searchBudget, maxTasks: query.constraints.maxTasks ?? .max)

        switch search.solve(goals: goals) {
        case .overTaskLimit(let budgetExhausted):
            // The cheapest plan without the bound, to say what it would take.
            var unbounded = CatalogSearch(capabilities: usable, available: available, budget: searchBudget)
            let bound = query.constraints.maxTasks ?? 0
            var message = budgetExhausted
                ? "the search budget (\(searchBudget) alternatives) ran out before it found a plan for \(list(goals)) in \(bound) task\(bound == 1 ? "" : "s"), the most the query allows"
                : "no plan for \(list(goals)) fits in \(bound) task\(bound == 1 ? "" : "s"), the most the query allows"
            if case .solved(let cheapest) = unbounded.solve(goals: goals) {
                message += "; the cheapest plan needs \(cheapest.order.count)"
            }
            throw PlanningError(.constraintViolated, message)
        case .unreachable(let unreachable, let missing):
            var message = "cannot produce \(list(unreachable)) from the available artifacts (\(list(available.sorted())))"
            if missing.isEmpty {
                message += ": every route is circular or the search budget ran out"
            } else {
                message += ": nothing produces \(list(missing)); provide \(missing.count == 1 ? "it" : "them") as input"
                message += missing.count == 1 ? "" : "s"
                message += " or add a capability that produces \(missing.count == 1 ? "it" : "them")"
            }
            let blocked = catalog.capabilities.filter { excluded.contains($0.name) }.map(\.name)
            if !blocked.isEmpty { message += " (capabilities excluded by the query: \(list(blocked)))" }
            throw PlanningError(.unreachableGoal, message, missingArtifacts: missing)
        case .solved(let solution):
            let built = buildDag(solution, search: search, goals: goals, query: query)
            var rationale = "\(goalReason); available inputs: \(list(available.sorted())); "
            rationale += "\(solution.order.count) step\(solution.order.count == 1 ? "" : "s") with total cost \(DotExport.format(solution.cost)), the cheapest combination found by searching back from the goal"
            if !built.alternatives.isEmpty { rationale += "; " + built.alternatives.joined(separator: "; ") }
            if solution.budgetExhausted {
                rationale += "; the search budget (\(searchBudget) alternatives) ran out, so a cheaper plan may exist"
            }
            return try context.finish(
                built.dag, planner: name, rationale: rationale, query: query, started: started,
                alternatives: built.alternatives, goals: goals)
        }
    }

    /// The goal artifacts and a sentence saying where they came from.
    func goals(for query: Query) throws(PlanningError) -> ([String], String) {
        if let goal = query.goal, !goal.artifacts.isEmpty {
            // Each once: 100,000 copies of one goal made a 1 MB rationale, repeated in every read of
            // the workflow (found by black-box testing).
            var seen = Set<String>()
            let goals = goal.artifacts.filter { seen.insert($0).inserted }
            return (goals, "goal \(list(goals)) given by the query")
        }
        let matches = IntentMatcher.matches(query.text, rules: catalog.intents)
        guard !matches.isEmpty else {
            let known = catalog.intents.map { "\($0.name) (\($0.phrases.map { "\"\($0)\"" }.joined(separator: ", ")))" }
            throw PlanningError(
                .noGoal,
                "no intent rule of catalog `\(catalog.name)` matches the query text \"\(query.text)\" and the query gives no goal; rules: \(known.joined(separator: "; "))")
        }
        var goals: [String] = []
        for match in matches { for goal in match.goals where !goals.contains(goal) { goals.append(goal) } }
        let why = matches.map { "intent `\($0.rule)` (matched \"\($0.phrase)\")" }.joined(separator: ", ")
        return (goals, "goal \(list(goals)) from \(why)")
    }

    private func buildDag(_ solution: CatalogSearch.Solution, search: CatalogSearch, goals: [String], query: Query)
        -> (dag: Dag, alternatives: [String])
    {
        let capabilities = search.capabilities
        // Who consumes what, for the per-task explanations.
        var consumers: [String: [String]] = [:]
        for p in solution.order {
            for input in capabilities[p].consumes where solution.supplier[input] != nil {
                consumers[input, default: []].append(capabilities[p].name)
            }
        }
        // Choices between alternatives, per artifact the plan produces.
        var alternatives: [String] = []
        var choiceNote: [Int: [String]] = [:]
        for p in solution.order {
            for output in capabilities[p].produces where solution.supplier[output] == p {
                let others = search.feasibleProducers(of: output).filter { $0 != p }
                guard !others.isEmpty else { continue }
                let chosenCost = search.routeCost[p]
                let described = others.map { "`\(capabilities[$0].name)` (route cost \(DotExport.format(search.routeCost[$0])))" }
                var sentence = "`\(output)`: chose `\(capabilities[p].name)` (route cost \(DotExport.format(chosenCost))) over \(described.joined(separator: ", "))"
                if others.allSatisfy({ search.routeCost[$0] >= chosenCost }) {
                    sentence += " because it is cheaper"
                } else if let maxTasks = query.constraints.maxTasks {
                    // The bound may be why (deep_research alone rather than four cheaper steps).
                    sentence += " because it shares steps already in the plan or keeps the plan within \(maxTasks) task\(maxTasks == 1 ? "" : "s")"
                } else {
                    sentence += " because it shares steps already in the plan, which makes the whole plan cheaper"
                }
                alternatives.append(sentence)
                choiceNote[p, default: []].append(
                    "chosen over \(others.map { "`\(capabilities[$0].name)`" }.joined(separator: ", ")) for `\(output)`")
            }
        }

        var tasks: [TaskSpec] = []
        var edges: [Edge] = []
        for p in solution.order {
            let capability = capabilities[p]
            var reasons: [String] = []
            let goalOutputs = capability.produces.filter { goals.contains($0) && solution.supplier[$0] == p }
            if !goalOutputs.isEmpty { reasons.append("produces goal \(list(goalOutputs))") }
            for output in capability.produces where solution.supplier[output] == p {
                if let users = consumers[output] { reasons.append("produces `\(output)` for \(list(users))") }
            }
            reasons += choiceNote[p] ?? []
            var metadata: [String: String] = [:]
            if !capability.description.isEmpty { metadata["description"] = capability.description }
            for input in capability.consumes where solution.supplier[input] == nil {
                metadata["input.\(input)"] = query.providedInputs[input] ?? query.text
            }
            var labels = query.labels
            labels["catalog"] = catalog.name
            tasks.append(
                TaskSpec(
                    key: TaskKey(capability.name), name: capability.name,
                    requiredCapabilities: [capability.executorCapability], inputs: capability.consumes,
                    outputs: capability.produces, complexity: capability.complexity, estimatedCost: capability.cost,
                    priority: query.priority, timeoutSeconds: capability.timeoutSeconds,
                    retry: capability.maxAttempts.map { RetryPolicy(maxAttempts: $0) } ?? .default,
                    labels: labels, metadata: metadata, rationale: reasons.joined(separator: "; ")))
            var upstream = Set<Int>()
            for input in capability.consumes {
                if let s = solution.supplier[input], upstream.insert(s).inserted {
                    edges.append(Edge(from: TaskKey(capabilities[s].name), to: TaskKey(capability.name)))
                }
            }
        }
        return (Dag(tasks: tasks, edges: edges), alternatives)
    }

    private func list(_ names: [String]) -> String { names.map { "`\($0)`" }.joined(separator: ", ") }
}
