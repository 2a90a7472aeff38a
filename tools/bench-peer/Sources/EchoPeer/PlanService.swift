import Foundation
import GRPCCore
import Logging
import OrchestratorAPI
import OrchestratorGRPC

/// Serves the unary `orchestrator.v1.Workflows/PlanWorkflow` with the product's own planning code
/// (decoding through protobuf-c, the planner registry, analysis, encoding), so `tools/bench rpc`
/// compares only what differs: the RPC stack carrying the call.
struct PlanService: RegistrableRPCService {
    static let planWorkflow = MethodDescriptor(
        fullyQualifiedService: "orchestrator.v1.Workflows",
        method: "PlanWorkflow",
        type: .unary
    )

    let handler: WorkflowsPlanningHandler

    init() throws {
        let (registry, catalog) = try PlannerSetup.standard(logger: Logger(label: "peer"))
        handler = WorkflowsPlanningHandler(registry: registry, catalog: catalog)
    }

    func registerMethods<Transport: ServerTransport>(with router: inout RPCRouter<Transport>) {
        let handler = self.handler
        router.registerHandler(
            forMethod: Self.planWorkflow,
            deserializer: RawBytesDeserializer(),
            serializer: RawBytesSerializer()
        ) { request, _ in
            let single = try await ServerRequest(stream: request)
            let decoded = try Orchestrator_V1_PlanWorkflowRequest(serializedBytes: single.message)
            let now = Int64((Date().timeIntervalSince1970 * 1000).rounded())
            let response = try handler.plan(decoded.query).response(createdAt: now)
            return StreamingServerResponse(single: ServerResponse(message: try response.serializedBytes()))
        }
    }
}
