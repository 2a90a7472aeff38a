import NGRPC
import OrchestratorAPI

/// Decoding of every request message a server of this repository accepts, into the generated Swift
/// wrappers (protobuf-c underneath), then re-encoding.
///
/// Input: byte 0 picks the message type (`types`), the rest is the message. Checked besides
/// "never crashes": a message that decodes also encodes, and its encoding is canonical — decoding
/// it again and re-encoding gives the same bytes (wrappers and protobuf-c agree on every field,
/// including unknown enum values, maps and nested messages).
public enum RequestDecodingTarget {
    public static let name = "FuzzRequestDecoding"

    struct MessageType: Sendable {
        let name: String
        let roundTrip: @Sendable ([UInt8]) -> Void

        init<M: GRPCMessage>(_ type: M.Type) {
            name = String(describing: type)
            roundTrip = { RequestDecodingTarget.roundTrip(M.self, $0) }
        }
    }

    /// Workflows, Executors, Health and both reflection versions; then the codegen test type whose
    /// messages nest recursively (the nesting guard in front of protobuf-c).
    static let types: [MessageType] = [
        MessageType(Orchestrator_V1_SubmitQueryRequest.self),
        MessageType(Orchestrator_V1_SubmitStreamRequest.self),
        MessageType(Orchestrator_V1_PlanWorkflowRequest.self),
        MessageType(Orchestrator_V1_GetWorkflowRequest.self),
        MessageType(Orchestrator_V1_ListWorkflowsRequest.self),
        MessageType(Orchestrator_V1_GetDagRequest.self),
        MessageType(Orchestrator_V1_UpdateDagRequest.self),
        MessageType(Orchestrator_V1_CancelWorkflowRequest.self),
        MessageType(Orchestrator_V1_WatchWorkflowRequest.self),
        MessageType(Orchestrator_V1_ListEventsRequest.self),
        MessageType(Orchestrator_V1_ListTasksRequest.self),
        MessageType(Orchestrator_V1_LeaseRequest.self),
        MessageType(Orchestrator_V1_PollTasksRequest.self),
        MessageType(Orchestrator_V1_ReportStatusRequest.self),
        MessageType(Orchestrator_V1_HeartbeatRequest.self),
        MessageType(Grpc_Health_V1_HealthCheckRequest.self),
        MessageType(Grpc_Health_V1_HealthListRequest.self),
        MessageType(Grpc_Reflection_V1_ServerReflectionRequest.self),
        MessageType(Grpc_Reflection_V1alpha_ServerReflectionRequest.self),
        MessageType(Orchestrator_Testing_V1_EchoRequest.self),
        MessageType(Orchestrator_Testing_V1_Everything.self),
        MessageType(Orchestrator_Testing_V1_TreeNode.self),
    ]

    public static func run(_ data: [UInt8]) {
        var input = FuzzInput(data)
        let type = input.pick(types)
        type.roundTrip(input.rest())
    }

    static func roundTrip<M: GRPCMessage>(_ type: M.Type, _ bytes: [UInt8]) {
        guard let message = try? M(serializedBytes: bytes) else { return }
        let encoded: [UInt8]
        do {
            encoded = try message.serializedBytes()
        } catch {
            fuzzCheck(false, "\(M.self) decoded from \(bytes.count) bytes but does not encode: \(error)")
            return
        }
        let again: M
        do {
            again = try M(serializedBytes: encoded)
        } catch {
            fuzzCheck(false, "\(M.self) re-encoded as \(encoded.count) bytes that do not decode: \(error)")
            return
        }
        let reencoded = try? again.serializedBytes()
        fuzzCheck(reencoded == encoded, "\(M.self) encoding is not stable: \(encoded.count) then \(reencoded?.count ?? -1) bytes")
    }
}
