public import OrchestratorAPI
public import OrchestratorApp
public import OrchestratorDomain

/// A query decoded and planned: everything PlanWorkflow answers with, and everything a submission
/// stores (`NewWorkflow` takes `decoded.query`, `result.dag`, `payloads`, `ranks`, `planning`,
/// `decoded.failurePolicy`).
public struct PlannedQuery: Sendable {
    public var decoded: DecodedQuery
    public var result: PlanResult
    /// Executor payload per task: the request's for explicit graphs, derived from planner metadata
    /// otherwise (see `ExecutorPayload`).
    public var payloads: [TaskKey: [UInt8]]

    public init(decoded: DecodedQuery, result: PlanResult) {
        self.decoded = decoded
        self.result = result
        self.payloads = ExecutorPayload.payloads(for: result.dag, explicit: decoded.payloads)
    }

    public var planning: PlanningRecord { PlanningRecord(result.metadata) }

    /// Remaining-path rank per task key.
    public var ranks: [TaskKey: Double] {
        var ranks: [TaskKey: Double] = [:]
        let keys = result.analysis.graph.index.keys
        ranks.reserveCapacity(keys.count)
        for (id, key) in keys.enumerated() { ranks[key] = result.analysis.ranks[id] }
        return ranks
    }

    /// The DAG as it would be stored as version 1.
    public func dagMessage(createdAt: UnixMillis) -> Orchestrator_V1_Dag {
        var dag = Orchestrator_V1_Dag(result.dag, payloads: payloads)
        dag.version = 1
        dag.reason = "planned by \(result.metadata.planner)"
        dag.author = "planner:\(result.metadata.planner)"
        dag.createdUnixMs = createdAt
        return dag
    }

    public func response(createdAt: UnixMillis) -> Orchestrator_V1_PlanWorkflowResponse {
        Orchestrator_V1_PlanWorkflowResponse(
            dag: dagMessage(createdAt: createdAt), analysis: Orchestrator_V1_DagAnalysis(result.analysis),
            planning: Orchestrator_V1_PlanningInfo(result.metadata))
    }
}
