public import NGRPC
public import OrchestratorAPI

/// Answers that repeat task payloads (SubmitQuery, PlanWorkflow, GetDag, UpdateDag) stay within
/// what a gRPC client accepts by default. A request just under the server's receive limit made an
/// answer just over the client's: the workflow was stored, but its submitter got
/// RESOURCE_EXHAUSTED and, retrying with its request id, the same again (found by black-box
/// testing). Such an answer leaves the payloads out and says so (`payloads_omitted`).
enum AnswerBudget {
    /// What gRPC clients accept by default (4 MiB), the 5-byte message prefix included.
    static let defaultClientLimit = 4 * 1024 * 1024
    /// Answers carrying less payload than this are not measured (that costs an encoding): the
    /// rest of the answer alone would have to come within 1 MiB of the limit.
    static let measuredFrom = 1024 * 1024

    /// `answer`, or `answer` with `strip` applied when its payloads come to `payloadBytes` ≥
    /// `measuredFrom` and it would not fit a default client.
    static func fit<Answer: GRPCMessage>(_ answer: Answer, payloadBytes: Int, strip: (inout Answer) -> Void) -> Answer {
        guard payloadBytes >= measuredFrom, let size = try? answer.serializedBytes().count, size + 5 > defaultClientLimit else {
            return answer
        }
        var stripped = answer
        strip(&stripped)
        return stripped
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
        AnswerBudget.fit(self, payloadBytes: dag?.payloadBytes ?? 0) {
            $0.dag?.omitPayloads()
            $0.payloadsOmitted = true
        }
    }
}

extension Orchestrator_V1_PlanWorkflowResponse {
    func fittingDefaultClients() -> Self {
        AnswerBudget.fit(self, payloadBytes: dag?.payloadBytes ?? 0) {
            $0.dag?.omitPayloads()
            $0.payloadsOmitted = true
        }
    }
}

extension Orchestrator_V1_UpdateDagResponse {
    func fittingDefaultClients() -> Self {
        AnswerBudget.fit(self, payloadBytes: dag?.payloadBytes ?? 0) {
            $0.dag?.omitPayloads()
            $0.payloadsOmitted = true
        }
    }
}

extension Orchestrator_V1_GetDagResponse {
    func fittingDefaultClients() -> Self {
        let inTasks = tasks.reduce(0) { $0 + ($1.spec?.payload.count ?? 0) }
        return AnswerBudget.fit(self, payloadBytes: (dag?.payloadBytes ?? 0) + inTasks) {
            $0.dag?.omitPayloads()
            for index in $0.tasks.indices { $0.tasks[index].spec?.payload = [] }
            $0.payloadsOmitted = true
        }
    }
}
