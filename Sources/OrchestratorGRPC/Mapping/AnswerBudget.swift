internal import NGRPC
internal import OrchestratorAPI

/// Answers that repeat task payloads (SubmitQuery, PlanWorkflow, GetDag, UpdateDag) stay within
/// what a gRPC client accepts by default. A request just under the server's receive limit made an
/// answer just over the client's: the workflow was stored, but its submitter got
/// RESOURCE_EXHAUSTED and, retrying with its request id, the same again (found by black-box
/// testing). Such an answer leaves the payloads out and says so (`payloads_omitted`); an answer
/// to a call that stored something (SubmitQuery, UpdateDag) that is still too large (30,000
/// tasks: the analysis and the filled-in specs grow a 1 MB request into a 6 MB answer) leaves
/// the graph out as well (`graph_omitted`).
enum AnswerBudget {
    /// What gRPC clients accept by default (4 MiB), the 5-byte message prefix included.
    static let defaultClientLimit = 4 * 1024 * 1024
    /// Answers repeating less payload than this, for fewer tasks than `measuredFromTasks`, are
    /// not measured (that costs an encoding): they stay far below the limit.
    static let measuredFromPayloadBytes = 1024 * 1024
    static let measuredFromTasks = 1000

    /// `answer`, or `answer` with as many of `steps` applied, in order, as it takes to fit a
    /// default client (all of them when it never does). `always`: measured whatever its size
    /// looks like (answers to calls that stored something: a few tasks with 60 KB names and
    /// descriptions pass 4 MiB too).
    /// `headroom`: bytes the answer is wrapped in (a workflow inside its response).
    static func fit<Answer: GRPCMessage>(
        _ answer: Answer, payloadBytes: Int, tasks: Int, always: Bool = false, headroom: Int = 0, steps: [(inout Answer) -> Void]
    ) -> Answer {
        guard always || payloadBytes >= measuredFromPayloadBytes || tasks >= measuredFromTasks else { return answer }
        var fitted = answer
        for step in steps {
            guard let size = try? fitted.serializedBytes().count, size + 5 + headroom > defaultClientLimit else { return fitted }
            step(&fitted)
        }
        return fitted
    }
}

extension Orchestrator_V1_Dag {
    var payloadBytes: Int { tasks.reduce(0) { $0 + $1.payload.count } }

    mutating func omitPayloads() {
        for index in tasks.indices { tasks[index].payload = [] }
    }
}

extension Orchestrator_V1_SubmitQueryResponse {
    func fittingDefaultClients() -> Self {
        let payloads = dag?.payloadBytes ?? 0
        return AnswerBudget.fit(self, payloadBytes: payloads, tasks: dag?.tasks.count ?? 0, always: true, steps: [
            { $0.dag?.omitPayloads(); $0.payloadsOmitted = payloads > 0 },
            // The workflow is stored: its submitter must learn its id, whatever else is left out
            // (the query's own copy of the graph included).
            {
                $0.dag = nil
                $0.analysis = nil
                $0.workflow = $0.workflow?.withoutQueryGraph()
                $0.graphOmitted = true
            },
        ])
    }
}

extension Orchestrator_V1_PlanWorkflowResponse {
    /// Nothing is stored by PlanWorkflow: a graph too large even without payloads is answered
    /// whole, for a client that raised its limit (the others get RESOURCE_EXHAUSTED and may retry).
    func fittingDefaultClients() -> Self {
        let payloads = dag?.payloadBytes ?? 0
        return AnswerBudget.fit(self, payloadBytes: payloads, tasks: dag?.tasks.count ?? 0, steps: [
            { $0.dag?.omitPayloads(); $0.payloadsOmitted = payloads > 0 },
        ])
    }
}

extension Orchestrator_V1_UpdateDagResponse {
    func fittingDefaultClients() -> Self {
        let payloads = dag?.payloadBytes ?? 0
        return AnswerBudget.fit(self, payloadBytes: payloads, tasks: dag?.tasks.count ?? 0, always: true, steps: [
            { $0.dag?.omitPayloads(); $0.payloadsOmitted = payloads > 0 },
            // The update is stored: the caller must learn that it was.
            { $0.dag = nil; $0.analysis = nil; $0.graphOmitted = true },
        ])
    }
}

extension Orchestrator_V1_GetDagResponse {
    func fittingDefaultClients() -> Self {
        let payloads = (dag?.payloadBytes ?? 0) + tasks.reduce(0) { $0 + ($1.spec?.payload.count ?? 0) }
        return AnswerBudget.fit(self, payloadBytes: payloads, tasks: dag?.tasks.count ?? 0, steps: [
            {
                $0.dag?.omitPayloads()
                for index in $0.tasks.indices { $0.tasks[index].spec?.payload = [] }
                $0.payloadsOmitted = payloads > 0
            },
        ])
    }
}

extension Orchestrator_V1_Workflow {
    /// Without `query.graph`, saying so: the form of a workflow in a list.
    func withoutQueryGraph() -> Self {
        guard query?.graph != nil else { return self }
        var summary = self
        summary.query?.graph = nil
        summary.queryGraphOmitted = true
        return summary
    }

    /// Without `query.graph` when with it the answer carrying this workflow would not fit a
    /// default client (a 100,000-task graph makes a 5 MB GetWorkflow answer).
    func fittingDefaultClients() -> Self {
        guard let graph = query?.graph, !graph.tasks.isEmpty else { return self }
        return AnswerBudget.fit(self, payloadBytes: 0, tasks: graph.tasks.count, always: true, headroom: 64, steps: [
            { $0 = $0.withoutQueryGraph() },
        ])
    }
}
