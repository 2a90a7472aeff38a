/// The catalog planner's search: from goal artifacts back to available ones, over an AND/OR graph
/// (an artifact is an OR over the capabilities producing it; a capability is an AND over what it consumes).
///
/// 1. Relevance: walk backwards from the goals; only capabilities that can contribute are considered.
/// 2. Route costs: each artifact's cheapest derivation as a tree (`cost(a) = min over producers p of
///    cost(p) + Σ cost(inputs of p)`, a Bellman–Ford style fixed point). Infinite means unreachable; the
///    values order the alternatives and explain choices.
/// 3. Exact search: depth-first branch and bound over the choice of producer for each needed artifact,
///    counting each capability once however many consumers share it (so the true plan cost, which tree
///    costs overestimate when steps are shared). Artifacts with one feasible producer are forced without
///    branching, so a big but unambiguous catalog costs linear time. Branching is bounded by `budget`
///    alternatives and `maxDepth` nested choices; past either, choices are greedy (cheapest route) and
///    the solution says the budget ran out. Candidate solutions whose supply graph has a cycle are rejected.
///    With `maxTasks`, branches that need more capabilities are cut, so the plan is the cheapest of
///    those that fit (the cheapest overall was found and then refused, though a smaller one existed).
struct CatalogSearch {
    struct Solution {
        /// Capability indices in dependency order (upstream first).
        var order: [Int]
        /// `supplier[artifact]`: the chosen capability that provides it (absent for available artifacts).
        var supplier: [String: Int]
        var cost: Double
        /// The branch budget ran out: the plan is the best found, maybe not the cheapest.
        var budgetExhausted: Bool
    }

    enum Outcome {
        case solved(Solution)
        case unreachable(goals: [String], missing: [String])
        /// Every plan the search reached needs more than `maxTasks` capabilities (it may have
        /// stopped at its budget before finding one that fits).
        case overTaskLimit(budgetExhausted: Bool)
    }

    let capabilities: [CatalogCapability]
    let budget: Int
    /// Most capabilities a plan may use.
    let maxTasks: Int
    private var artifactNames: [String] = []
    private var artifactIds: [String: Int] = [:]
    private var consumes: [[Int]] = []
    private var produces: [[Int]] = []
    private var producers: [[Int]] = []
    private var available: [Bool] = []
    /// Cheapest tree cost of producing each artifact (0 if available, infinity if unreachable).
    private(set) var artifactCost: [Double] = []
    /// `cost(p) + Σ artifactCost(inputs of p)` per capability.
    private(set) var routeCost: [Double] = []

    init(capabilities: [CatalogCapability], available: Set<String>, budget: Int = 50_000, maxTasks: Int = .max) {
        self.capabilities = capabilities
        self.budget = budget
        self.maxTasks = maxTasks
        for capability in capabilities {
            consumes.append(capability.consumes.map { intern($0) })
            produces.append(capability.produces.map { intern($0) })
        }
        for name in available { _ = intern(name) }
        producers = [[Int]](repeating: [], count: artifactNames.count)
        for (p, outputs) in produces.enumerated() { for o in outputs { producers[o].append(p) } }
        self.available = artifactNames.map { available.contains($0) }
    }

    private mutating func intern(_ name: String) -> Int {
        if let id = artifactIds[name] { return id }
        artifactIds[name] = artifactNames.count
        artifactNames.append(name)
        return artifactNames.count - 1
    }

    func artifactCost(of name: String) -> Double { artifactIds[name].map { artifactCost[$0] } ?? .infinity }

    /// The capabilities producing `name` that can actually be run from the available artifacts.
    func feasibleProducers(of name: String) -> [Int] {
        guard let a = artifactIds[name] else { return [] }
        return producers[a].filter { routeCost[$0].isFinite }
    }

    mutating func solve(goals: [String]) -> Outcome {
        var goalIds: [Int] = []
        for goal in goals {
            if artifactIds[goal] == nil {
                artifactIds[goal] = artifactNames.count
                artifactNames.append(goal)
                producers.append([])
                available.append(false)
            }
            goalIds.append(artifactIds[goal]!)
        }
        let relevant = relevantCapabilities(goalIds)
        computeCosts(relevant)

        let unreachable = goalIds.filter { !artifactCost[$0].isFinite }
        if !unreachable.isEmpty {
            return .unreachable(goals: unreachable.map { artifactNames[$0] }, missing: missingArtifacts(unreachable))
        }

        var best: State?
        var explored = 0
        var exhausted = false
        var cutForSize = false
        var start = State(capabilityCount: capabilities.count, artifactCount: artifactNames.count)
        start.open = goalIds.reversed()
        explore(start, depth: 0, best: &best, explored: &explored, exhausted: &exhausted, cutForSize: &cutForSize)
        // Only when the bound cut something: plans that were all circular say so as before.
        if best == nil, cutForSize { return .overTaskLimit(budgetExhausted: exhausted) }
        guard let best, let order = acyclicOrder(best) else {
            return .unreachable(goals: goals, missing: [])
        }
        var supplier: [String: Int] = [:]
        for (a, p) in best.supplier.enumerated() where p >= 0 { supplier[artifactNames[a]] = p }
        return .solved(Solution(order: order, supplier: supplier, cost: best.cost, budgetExhausted: exhausted))
    }

    private func relevantCapabilities(_ goals: [Int]) -> [Bool] {
        var relevantCapability = [Bool](repeating: false, count: capabilities.count)
        var seen = [Bool](repeating: false, count: artifactNames.count)
        var stack = goals
        while let a = stack.popLast() {
            if seen[a] { continue }
            seen[a] = true
            if available[a] { continue }
            for p in producers[a] where !relevantCapability[p] {
                relevantCapability[p] = true
                stack.append(contentsOf: consumes[p])
            }
        }
        return relevantCapability
    }

    private mutating func computeCosts(_ relevant: [Bool]) {
        artifactCost = available.map { $0 ? 0 : .infinity }
        routeCost = [Double](repeating: .infinity, count: capabilities.count)
        // Each round settles at least one more artifact, so at most one round per artifact (plus one).
        var changed = true
        while changed {
            changed = false
            for p in 0..<capabilities.count where relevant[p] {
                var total = capabilities[p].cost
                for x in consumes[p] { total += artifactCost[x] }
                guard total.isFinite else { continue }
                routeCost[p] = total
                for o in produces[p] where total < artifactCost[o] {
                    artifactCost[o] = total
                    changed = true
                }
            }
        }
    }

    /// Artifacts below the unreachable goals that no capability produces and nobody provided, sorted.
    private func missingArtifacts(_ goals: [Int]) -> [String] {
        var missing: [String] = []
        var seen = [Bool](repeating: false, count: artifactNames.count)
        var stack = Array(goals.reversed())
        while let a = stack.popLast() {
            if seen[a] || artifactCost[a].isFinite { continue }
            seen[a] = true
            if producers[a].isEmpty {
                missing.append(artifactNames[a])
                continue
            }
            for p in producers[a] { stack.append(contentsOf: consumes[p].reversed()) }
        }
        return missing.sorted()
    }

    private struct State {
        var chosen: [Bool]
        var order: [Int] = []
        var supplier: [Int]
        var open: [Int] = []
        var cost = 0.0

        init(capabilityCount: Int, artifactCount: Int) {
            chosen = [Bool](repeating: false, count: capabilityCount)
            supplier = [Int](repeating: -1, count: artifactCount)
        }
    }

    private func apply(_ p: Int, to state: inout State) {
        state.chosen[p] = true
        state.order.append(p)
        state.cost += capabilities[p].cost
        for o in produces[p] where state.supplier[o] < 0 { state.supplier[o] = p }
        state.open.append(contentsOf: consumes[p].reversed())
    }

    /// Branch points deeper than this are decided greedily (cheapest route), keeping recursion shallow.
    static let maxDepth = 256

    private func explore(
        _ initial: State, depth: Int, best: inout State?, explored: inout Int, exhausted: inout Bool, cutForSize: inout Bool
    ) {
        var state = initial
        let bestCost = { (best: State?) in best?.cost ?? .infinity }
        while let a = state.open.popLast() {
            if available[a] || state.supplier[a] >= 0 { continue }
            // An open artifact has no chosen producer (choosing one supplies it), so all candidates are new.
            let candidates = producers[a].filter { routeCost[$0].isFinite }
                .sorted { (routeCost[$0], $0) < (routeCost[$1], $1) }
            guard let cheapest = candidates.first else { return }
            // Forced, or out of budget/depth: take the cheapest route without branching.
            if candidates.count == 1 || exhausted || depth >= Self.maxDepth {
                if candidates.count > 1 { exhausted = true }
                apply(cheapest, to: &state)
                if state.cost >= bestCost(best) { return }
                if state.order.count > maxTasks {
                    cutForSize = true
                    return
                }
                continue
            }
            // Lower bound: at least one more capability is needed for `a`.
            let cheapestStep = candidates.map { capabilities[$0].cost }.min()!
            if state.cost + cheapestStep >= bestCost(best) { return }
            if state.order.count >= maxTasks {
                cutForSize = true
                return
            }
            for p in candidates {
                explored += 1
                if explored > budget { exhausted = true }
                var next = state
                apply(p, to: &next)
                if next.order.count > maxTasks {
                    cutForSize = true
                } else if next.cost < bestCost(best) {
                    explore(next, depth: depth + 1, best: &best, explored: &explored, exhausted: &exhausted, cutForSize: &cutForSize)
                }
                // Once exhausted, the branch just explored was completed greedily: keep the best so far.
                if exhausted { return }
            }
            return
        }
        if state.cost < bestCost(best), acyclicOrder(state) != nil { best = state }
    }

    /// The chosen capabilities in dependency order, or nil if they supply each other in a circle.
    private func acyclicOrder(_ state: State) -> [Int]? {
        let chosen = state.order
        var position = [Int: Int]()
        for (i, p) in chosen.enumerated() { position[p] = i }
        var indegree = [Int](repeating: 0, count: chosen.count)
        var successors = [[Int]](repeating: [], count: chosen.count)
        for (i, p) in chosen.enumerated() {
            var suppliers = Set<Int>()
            for x in consumes[p] where !available[x] {
                let s = state.supplier[x]
                if s >= 0, let j = position[s], suppliers.insert(j).inserted {
                    successors[j].append(i)
                    indegree[i] += 1
                }
            }
        }
        // Kahn's algorithm; ties go to the earliest choice, so the order is deterministic.
        var ready = (0..<chosen.count).filter { indegree[$0] == 0 }.sorted(by: >)
        var order: [Int] = []
        while let i = ready.popLast() {
            order.append(chosen[i])
            for j in successors[i] {
                indegree[j] -= 1
                if indegree[j] == 0 { ready.append(j) }
            }
        }
        return order.count == chosen.count ? order : nil
    }
}
