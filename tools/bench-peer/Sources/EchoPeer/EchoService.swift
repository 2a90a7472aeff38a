import GRPCCore

/// Serves the unary `orchestrator.testing.v1.Echo/Get` by returning the request's bytes.
///
/// EchoRequest.text (field 1, string) and EchoResponse.text (field 1, string) share a wire
/// encoding, so for a request that sets only `text` the echoed bytes are a valid EchoResponse.
struct EchoService: RegistrableRPCService {
    static let get = MethodDescriptor(
        fullyQualifiedService: "orchestrator.testing.v1.Echo",
        method: "Get",
        type: .unary
    )

    func registerMethods<Transport: ServerTransport>(with router: inout RPCRouter<Transport>) {
        router.registerHandler(
            forMethod: Self.get,
            deserializer: RawBytesDeserializer(),
            serializer: RawBytesSerializer()
        ) { request, _ in
            let single = try await ServerRequest(stream: request)
            return StreamingServerResponse(single: ServerResponse(message: single.message))
        }
    }
}
