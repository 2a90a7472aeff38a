public import OrchestratorAPI
public import OrchestratorDomain

extension Orchestrator_V1_DagAnalysis {
    /// The API form of a graph analysis.
    public init(_ analysis: GraphAnalysis) {
        self.init()
        let keys = analysis.graph.index.keys
        topologicalOrder = analysis.topologicalOrder.map(\.rawValue)
        levels = analysis.levels.map { Orchestrator_V1_DagLevel(taskKeys: $0.map(\.rawValue)) }
        criticalPath = analysis.criticalPath.keys.map(\.rawValue)
        criticalPathCost = analysis.criticalPath.length
        var ranks: [String: Double] = [:]
        ranks.reserveCapacity(keys.count)
        for (id, key) in keys.enumerated() { ranks[key.rawValue] = analysis.ranks[id] }
        self.ranks = ranks
        let statistics = analysis.statistics
        maxFanIn = Int32(clamping: statistics.maxFanIn)
        maxFanOut = Int32(clamping: statistics.maxFanOut)
        isolatedTasks = statistics.isolatedTasks.map(\.rawValue)
        taskCount = Int32(clamping: statistics.taskCount)
        edgeCount = Int32(clamping: statistics.edgeCount)
    }
}
