import NGRPC
import OrchestratorAPI

/// Submits workflows through the public API (SubmitQuery with an explicit graph), as a client would.
struct Submitter: Sendable {
    let host: String
    let port: Int

    /// `count` independent tasks needing `capability`.
    static func independent(_ count: Int, capability: String, prefix: String = "t") -> Orchestrator_V1_Dag {
        var dag = Orchestrator_V1_Dag()
        dag.tasks = (0..<count).map { index in
            var task = Orchestrator_V1_TaskSpec()
            task.key = "\(prefix)\(index)"
            task.requiredCapabilities = [capability]
            return task
        }
        return dag
    }

    /// Two tasks, `r` then `c` (c depends on r).
    static func chain(capability: String) -> Orchestrator_V1_Dag {
        var dag = Orchestrator_V1_Dag()
        var root = Orchestrator_V1_TaskSpec()
        root.key = "r"
        root.requiredCapabilities = [capability]
        var child = Orchestrator_V1_TaskSpec()
        child.key = "c"
        child.requiredCapabilities = [capability]
        child.dependsOn = ["r"]
        dag.tasks = [root, child]
        return dag
    }

    /// `layers` layers of `width` tasks, each depending on two tasks of the layer before (the
    /// shape `tools/bench store` stores directly: 100 × 1,000 tasks, 198,000 edges).
    static func layered(layers: Int, width: Int, capability: String) -> Orchestrator_V1_Dag {
        var dag = Orchestrator_V1_Dag()
        dag.tasks.reserveCapacity(layers * width)
        for layer in 0..<layers {
            for index in 0..<width {
                var task = Orchestrator_V1_TaskSpec()
                task.key = "L\(layer)-\(index)"
                task.requiredCapabilities = [capability]
                if layer > 0 { task.dependsOn = ["L\(layer - 1)-\(index)", "L\(layer - 1)-\((index + 1) % width)"] }
                dag.tasks.append(task)
            }
        }
        return dag
    }

    /// Submits one workflow and returns its id once the server stored it.
    func submit(_ dag: Orchestrator_V1_Dag, channel: GRPCChannel) async throws -> String {
        var request = Orchestrator_V1_SubmitQueryRequest()
        var query = Orchestrator_V1_Query()
        query.text = "dispatch bench"
        query.graph = dag
        request.query = query
        // The answer carries the stored graph back: as large as the request for big DAGs.
        let response = try await Orchestrator_V1_WorkflowsClient(channel: channel).submitQuery(
            request, options: CallOptions(timeout: .seconds(600), maxReceiveMessageSize: 256 << 20))
        guard let workflow = response.workflow else { throw BenchError("SubmitQuery answered without a workflow") }
        return workflow.workflowID
    }
}

struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
