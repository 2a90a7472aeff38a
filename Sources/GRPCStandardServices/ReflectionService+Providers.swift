import NGRPC
import OrchestratorAPI

/// `grpc.reflection.v1.ServerReflection`: answers each request in order on the same stream.
struct ReflectionV1Provider: Grpc_Reflection_V1_ServerReflectionProvider {
    let service: ReflectionService

    func serverReflectionInfo(
        _ requests: RPCRequestStream<Grpc_Reflection_V1_ServerReflectionRequest>,
        responses: RPCResponseWriter<Grpc_Reflection_V1_ServerReflectionResponse>,
        context: ServerContext
    ) async throws {
        for try await request in requests {
            try await responses.write(service.answer(request))
        }
    }
}

/// `grpc.reflection.v1alpha.ServerReflection`: the same messages under another package, so each
/// request is re-read as v1 and each answer re-read as v1alpha through the identical wire format.
struct ReflectionV1AlphaProvider: Grpc_Reflection_V1alpha_ServerReflectionProvider {
    let service: ReflectionService

    func serverReflectionInfo(
        _ requests: RPCRequestStream<Grpc_Reflection_V1alpha_ServerReflectionRequest>,
        responses: RPCResponseWriter<Grpc_Reflection_V1alpha_ServerReflectionResponse>,
        context: ServerContext
    ) async throws {
        for try await request in requests {
            let v1Request = try Grpc_Reflection_V1_ServerReflectionRequest(serializedBytes: request.serializedBytes())
            let v1Response = service.answer(v1Request)
            try await responses.write(Grpc_Reflection_V1alpha_ServerReflectionResponse(serializedBytes: v1Response.serializedBytes()))
        }
    }
}
