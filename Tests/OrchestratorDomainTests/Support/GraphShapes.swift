import OrchestratorDomain

/// The canonical graphs every planner is tested against.
enum CanonicalShape: String, CaseIterable, CustomStringConvertible {
    case linear
    case branchesAndJoins
    case fanOut10k
    case fanIn10k
    case isolated

    var description: String { rawValue }

    var dag: Dag {
        switch self {
        case .linear:
            return Graphs.dag(["a", "b", "c"], edges: [("a", "b"), ("b", "c")])
        case .branchesAndJoins:
            // a fans out to b and c; b and c join in d; d fans out to e and f; e and f join in g.
            return Graphs.dag(
                ["a", "b", "c", "d", "e", "f", "g"],
                edges: [("a", "b"), ("a", "c"), ("b", "d"), ("c", "d"), ("d", "e"), ("d", "f"), ("e", "g"), ("f", "g")],
                costs: ["a": 1, "b": 5, "c": 2, "d": 1, "e": 1, "f": 3, "g": 1])
        case .fanOut10k:
            let leaves = (0..<10_000).map { "leaf-\($0)" }
            return Graphs.dag(["root"] + leaves, edges: leaves.map { ("root", $0) })
        case .fanIn10k:
            let sources = (0..<10_000).map { "source-\($0)" }
            return Graphs.dag(sources + ["sink"], edges: sources.map { ($0, "sink") })
        case .isolated:
            return Graphs.dag(["lonely", "alone", "x", "y"], edges: [("x", "y")])
        }
    }

    /// Expected number of levels (parallel stages).
    var depth: Int {
        switch self {
        case .linear: 3
        case .branchesAndJoins: 5
        case .fanOut10k, .fanIn10k, .isolated: 2
        }
    }
}

enum Graphs {
    static func dag(_ keys: [String], edges: [(String, String)], costs: [String: Double] = [:]) -> Dag {
        Dag(
            tasks: keys.map { TaskSpec(key: TaskKey($0), estimatedCost: costs[$0] ?? 1) },
            edges: edges.map { Edge(from: TaskKey($0.0), to: TaskKey($0.1)) })
    }

    static func validate(_ dag: Dag, limits: ValidationLimits = .default) throws -> ValidatedDag {
        try DagValidator(limits: limits).validate(dag)
    }

    /// The failure validation reports, or nil if the graph is valid.
    static func failure(_ dag: Dag, limits: ValidationLimits = .default) -> ValidationFailure? {
        do {
            _ = try DagValidator(limits: limits).validate(dag)
            return nil
        } catch {
            return error
        }
    }

    /// Edges as "a>b" strings, sorted, for order-independent comparison.
    static func edgeSet(_ dag: Dag) -> [String] {
        dag.edges.map { "\($0.from)>\($0.to)" }.sorted()
    }

    /// A random DAG: tasks t0…t(n-1) placed in a random order, each forward pair joined with
    /// probability `density`; integer costs 0...9. Keys are listed in a shuffled order too.
    static func randomDag(_ rng: inout SplitMix64, tasks n: Int, density: Double) -> Dag {
        var order = Array(0..<n)
        for i in stride(from: n - 1, to: 0, by: -1) { order.swapAt(i, rng.next(below: i + 1)) }
        var edges: [Edge] = []
        for i in 0..<n {
            for j in (i + 1)..<max(i + 1, n) where Double(rng.next(below: 1_000_000)) / 1_000_000 < density {
                edges.append(Edge(from: TaskKey("t\(order[i])"), to: TaskKey("t\(order[j])")))
            }
        }
        var listing = Array(0..<n)
        for i in stride(from: n - 1, to: 0, by: -1) { listing.swapAt(i, rng.next(below: i + 1)) }
        let tasks = listing.map { TaskSpec(key: TaskKey("t\($0)"), estimatedCost: Double(rng.next(below: 10))) }
        return Dag(tasks: tasks, edges: edges)
    }

    static func successors(_ dag: Dag) -> [TaskKey: [TaskKey]] {
        var out: [TaskKey: [TaskKey]] = [:]
        for edge in dag.edges { out[edge.from, default: []].append(edge.to) }
        return out
    }

    /// Longest path by node cost, by enumerating every path explicitly (exponential: small graphs only).
    static func bruteForceLongestPath(_ dag: Dag, from start: TaskKey? = nil) -> Double {
        let successors = successors(dag)
        let cost = Dictionary(uniqueKeysWithValues: dag.tasks.map { ($0.key, $0.estimatedCost) })
        var best = 0.0
        // Explicit stack of (node, sum of costs along the path so far).
        var stack: [(TaskKey, Double)] = (start.map { [$0] } ?? dag.tasks.map(\.key)).map { ($0, cost[$0]!) }
        while let (node, sum) = stack.popLast() {
            best = max(best, sum)
            for next in successors[node] ?? [] { stack.append((next, sum + cost[next]!)) }
        }
        return best
    }

    /// Whether `to` can be reached from `from` along edges.
    static func reaches(_ dag: Dag, from: TaskKey, to: TaskKey) -> Bool {
        let successors = successors(dag)
        var seen: Set<TaskKey> = [from]
        var stack = [from]
        while let node = stack.popLast() {
            for next in successors[node] ?? [] {
                if next == to { return true }
                if seen.insert(next).inserted { stack.append(next) }
            }
        }
        return false
    }
}
