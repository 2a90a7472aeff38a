public import OrchestratorAPI
public import OrchestratorApp
import OrchestratorDomain

/// Decodes an UpdateDag request into a `DagChange`, listing every malformed field at once.
/// References to tasks that do not exist are checked later, against the current graph.
public enum DagChangeDecoding {
    public static func decode(_ request: Orchestrator_V1_UpdateDagRequest) throws -> DagChange {
        let (change, problems) = decodeCollectingProblems(request)
        guard problems.isEmpty else {
            throw RequestValidationError(subject: "invalid DAG update", problems: problems.problems, totalCount: problems.totalCount)
        }
        return change
    }

    /// The change as far as it decodes (a malformed task or edge is kept as it reads, a
    /// self-dependency left out) and every malformed field, so that the caller can check the
    /// rest against the current graph and answer with all problems at once.
    public static func decodeCollectingProblems(_ request: Orchestrator_V1_UpdateDagRequest) -> (DagChange, ProblemList) {
        var problems = ProblemList()
        var change = DagChange()
        for proto in request.addTasks {
            change.addTasks.append(TaskSpec(proto: proto, problems: &problems))
            if !proto.payload.isEmpty { change.payloads[TaskKey(proto.key)] = proto.payload }
            for upstream in proto.dependsOn {
                if upstream == proto.key {
                    problems.add(.selfLoop, "task `\(proto.key)` depends on itself", keys: [proto.key])
                } else {
                    change.addEdges.append(Edge(from: TaskKey(upstream), to: TaskKey(proto.key)))
                }
            }
        }
        change.removeTasks = request.removeTasks.map { TaskKey($0) }
        for edge in request.addEdges { change.addEdges.append(decode(edge, "add_edges", &problems)) }
        for edge in request.removeEdges { change.removeEdges.append(decode(edge, "remove_edges", &problems)) }
        if request.workflowID.isEmpty { problems.add(.invalidField, "workflow_id is required") }
        return (change, problems)
    }

    static func decode(_ edge: Orchestrator_V1_Edge, _ field: String, _ problems: inout ProblemList) -> Edge {
        if edge.upstream.isEmpty || edge.downstream.isEmpty {
            problems.add(.invalidField, "\(field): an edge needs both upstream and downstream keys")
        }
        return Edge(from: TaskKey(edge.upstream), to: TaskKey(edge.downstream))
    }
}
