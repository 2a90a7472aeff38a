/// Everything the planner and dispatcher want to know about a validated graph, computed once.
public struct GraphAnalysis: Sendable {
    public let graph: ValidatedDag
    /// `ranks[id]`: remaining-path rank (see `CriticalPathAnalysis.ranks`).
    public let ranks: [Double]
    public let criticalPath: CriticalPath
    /// `levelOf[id]`: the stage the task belongs to.
    public let levelOf: [Int32]
    public let statistics: GraphStatistics

    public init(_ graph: ValidatedDag) {
        self.graph = graph
        ranks = CriticalPathAnalysis.ranks(graph)
        criticalPath = CriticalPathAnalysis.criticalPath(graph, ranks: ranks)
        levelOf = Levels.levelOf(graph)
        statistics = GraphStatistics(graph)
    }

    public var topologicalOrder: [TaskKey] { graph.orderedKeys }

    /// Stages of tasks that can run in parallel, as keys.
    public var levels: [[TaskKey]] {
        let depth = Int(levelOf.max() ?? -1) + 1
        var stages = [[TaskKey]](repeating: [], count: depth)
        for id in 0..<levelOf.count { stages[Int(levelOf[id])].append(graph.index.keys[id]) }
        return stages
    }

    public func rank(of key: TaskKey) -> Double? { graph.index.id(of: key).map { ranks[$0] } }
    public func level(of key: TaskKey) -> Int? { graph.index.id(of: key).map { Int(levelOf[$0]) } }
}
