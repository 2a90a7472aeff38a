import Testing
@testable import OrchestratorDomain

/// Properties over random DAGs from a seeded SplitMix64: a failure names its seed and reproduces exactly.
@Suite("Random DAG properties")
struct PropertyTests {
    static let seeds: [UInt64] = Array(1...150)

    @Test func splitMixMatchesTheReferenceSequence() {
        // First outputs for seed 1234567 from the reference C implementation (Vigna, prng.di.unimi.it).
        var rng = SplitMix64(seed: 1_234_567)
        #expect([rng.next(), rng.next(), rng.next()] == [6_457_827_717_110_365_317, 3_203_168_211_198_807_973, 9_817_491_932_198_370_423])
    }

    @Test(arguments: seeds)
    func topologicalOrderRespectsEveryEdge(seed: UInt64) throws {
        var rng = SplitMix64(seed: seed)
        let dag = Graphs.randomDag(&rng, tasks: 2 + rng.next(below: 60), density: 0.15)
        let graph = try Graphs.validate(dag)
        var position: [TaskKey: Int] = [:]
        for (i, key) in graph.orderedKeys.enumerated() { position[key] = i }
        #expect(position.count == dag.tasks.count)
        for edge in dag.edges { #expect(position[edge.from]! < position[edge.to]!, "seed \(seed): \(edge)") }
        // Levels: every edge goes down at least one level, and every non-source sits right below a parent.
        let levels = Levels.levelOf(graph)
        var parentLevels: [TaskKey: [Int32]] = [:]
        for edge in dag.edges {
            let (u, v) = (graph.index.id(of: edge.from)!, graph.index.id(of: edge.to)!)
            #expect(levels[v] > levels[u])
            parentLevels[edge.to, default: []].append(levels[u])
        }
        for id in 0..<graph.index.taskCount where levels[id] > 0 {
            #expect(parentLevels[graph.index.keys[id]]?.max() == levels[id] - 1)
        }
    }

    @Test(arguments: seeds)
    func injectedCycleIsFoundAndNamed(seed: UInt64) throws {
        var rng = SplitMix64(seed: seed)
        var dag = Graphs.randomDag(&rng, tasks: 3 + rng.next(below: 40), density: 0.2)
        // Pick an edge x → y and close a cycle from a task reachable from y (or y itself) back to x.
        guard !dag.edges.isEmpty else { return }
        let chosen = dag.edges[rng.next(below: dag.edges.count)]
        let below = dag.tasks.map(\.key).filter { $0 == chosen.to || Graphs.reaches(dag, from: chosen.to, to: $0) }
        let back = Edge(from: below[rng.next(below: below.count)], to: chosen.from)
        dag.edges.insert(back, at: rng.next(below: dag.edges.count + 1))

        let failure = try #require(Graphs.failure(dag), "seed \(seed): cycle through \(back) not detected")
        #expect(failure.codes == [.cycle])
        #expect(failure.issues.count == 1, "one strongly connected component, one cycle")
        let cycle = failure.issues[0].taskKeys
        let edges = Set(dag.edges)
        for (a, b) in zip(cycle, cycle.dropFirst() + [cycle[0]]) {
            #expect(edges.contains(Edge(a, b)), "seed \(seed): \(a) → \(b) is not an edge")
        }
        #expect(Set(cycle).count == cycle.count, "a simple cycle")
        // Every cycle in the graph uses the injected edge.
        let closes = zip(cycle, cycle.dropFirst() + [cycle[0]]).contains { $0 == back.from && $1 == back.to }
        #expect(closes, "seed \(seed): the named cycle \(cycle) must contain \(back)")
        #expect(failure.issues[0].message.contains(cycle.map(\.rawValue).joined(separator: " → ")))
    }

    @Test(arguments: seeds)
    func criticalPathMatchesBruteForce(seed: UInt64) throws {
        var rng = SplitMix64(seed: seed)
        let dag = Graphs.randomDag(&rng, tasks: 1 + rng.next(below: 12), density: 0.35)
        let graph = try Graphs.validate(dag)
        let ranks = CriticalPathAnalysis.ranks(graph)
        let path = CriticalPathAnalysis.criticalPath(graph, ranks: ranks)
        #expect(path.length == Graphs.bruteForceLongestPath(dag), "seed \(seed)")
        // The reported path is a real path whose costs add up to its length.
        let edges = Set(dag.edges)
        for (a, b) in zip(path.keys, path.keys.dropFirst()) { #expect(edges.contains(Edge(a, b))) }
        #expect(path.keys.reduce(0) { $0 + dag.task($1)!.estimatedCost } == path.length)
        // Each rank is the longest path starting at that task.
        for id in 0..<graph.index.taskCount {
            #expect(ranks[id] == Graphs.bruteForceLongestPath(dag, from: graph.index.keys[id]))
        }
    }

    @Test func largeRandomGraphWithACycleDeepInside() throws {
        var rng = SplitMix64(seed: 99)
        var dag = Graphs.randomDag(&rng, tasks: 3_000, density: 0.003)
        let graph = try Graphs.validate(dag)
        // Close the critical path into a cycle: the back edge runs from its last task to its first.
        let path = CriticalPathAnalysis.criticalPath(graph)
        dag.edges.append(Edge(path.keys.last!, path.keys.first!))
        let failure = try #require(Graphs.failure(dag))
        #expect(failure.codes == [.cycle])
        #expect(failure.issues[0].taskKeys.count >= 2)
    }
}
