import NGRPC
import OrchestratorAPI
import Testing

/// Implements only two of the five methods, so the others fall back to the generated defaults.
private struct PartialShapes: Orchestrator_Testing_V1_ShapesProvider {
    func unary(_ request: Orchestrator_Testing_V1_Everything, context: ServerContext) async throws -> Orchestrator_Testing_V1_Everything {
        var response = request
        response.names.append(context.method.method)
        return response
    }

    func serverStream(
        _ request: Orchestrator_Testing_V1_Everything, responses: RPCResponseWriter<Orchestrator_Testing_V1_TreeNode>,
        context: ServerContext
    ) async throws {
        for name in request.names { try await responses.write(Orchestrator_Testing_V1_TreeNode(label: name)) }
    }

    func clientStream(_ requests: RPCRequestStream<Orchestrator_Testing_V1_TreeNode>, context: ServerContext) async throws
        -> Orchestrator_Testing_V1_Empty
    {
        var count = 0
        for try await _ in requests { count += 1 }
        guard count == 3 else { throw RPCStatus(.failedPrecondition, "expected 3, got \(count)") }
        return Orchestrator_Testing_V1_Empty()
    }
}

@Suite("Generated service code")
struct GeneratedServiceTests {
    typealias Methods = Orchestrator_Testing_V1_ShapesMethods

    @Test func methodDescriptors() {
        #expect(
            Methods.all.map(\.path) == [
                "/orchestrator.testing.v1.Shapes/Unary", "/orchestrator.testing.v1.Shapes/ServerStream",
                "/orchestrator.testing.v1.Shapes/ClientStream", "/orchestrator.testing.v1.Shapes/Bidi",
                "/orchestrator.testing.v1.Shapes/Import",
            ])
        #expect(Methods.all.map(\.kind) == [.unary, .serverStreaming, .clientStreaming, .bidirectionalStreaming, .unary])
        #expect(Orchestrator_Testing_V1_EchoMethods.expand.kind == .serverStreaming)
    }

    /// Error messages name messages by these (`request message is not a valid …`).
    @Test func messagesKnowTheirProtobufNames() {
        #expect(Orchestrator_Testing_V1_Everything.grpcMessageName == "orchestrator.testing.v1.Everything")
        #expect(Orchestrator_V1_SubmitQueryRequest.grpcMessageName == "orchestrator.v1.SubmitQueryRequest")
        #expect(Orchestrator_Testing_V1_Everything.Inner.grpcMessageName == "orchestrator.testing.v1.Everything.Inner")
    }

    @Test func registerAddsEveryMethod() {
        var router = RPCRouter()
        PartialShapes().register(into: &router)
        #expect(router.serviceNames == ["orchestrator.testing.v1.Shapes"])
        for method in Methods.all { #expect(router.route(forPath: method.path)?.method == method) }
    }

    @Test func unimplementedMethodsAnswerUnimplemented() async throws {
        var router = RPCRouter()
        PartialShapes().register(into: &router)
        await #expect(throws: RPCStatus(.unimplemented, "/orchestrator.testing.v1.Shapes/Import is not implemented yet")) {
            _ = try await invoke(router, Methods.import, requests: [Orchestrator_Testing_V1_Empty()])
        }
        await #expect(throws: RPCStatus(.unimplemented, "/orchestrator.testing.v1.Shapes/Bidi is not implemented yet")) {
            _ = try await invoke(router, Methods.bidi, requests: [])
        }
    }

    @Test func clientCallsEveryShapeThroughTheRouter() async throws {
        var router = RPCRouter()
        PartialShapes().register(into: &router)
        let client = Orchestrator_Testing_V1_ShapesClient(channel: LoopbackChannel(router: router))

        let echoed = try await client.unary(Orchestrator_Testing_V1_Everything(names: ["a"]))
        #expect(echoed.names == ["a", "Unary"])

        var labels: [String] = []
        for try await node in try await client.serverStream(Orchestrator_Testing_V1_Everything(names: ["x", "y", "z"])) {
            labels.append(node.label)
        }
        #expect(labels == ["x", "y", "z"])

        let upload = try await client.clientStream()
        for label in ["1", "2", "3"] { try await upload.send(Orchestrator_Testing_V1_TreeNode(label: label)) }
        #expect(try await upload.finish() == Orchestrator_Testing_V1_Empty())

        await #expect(throws: RPCStatus(.unimplemented, "/orchestrator.testing.v1.Shapes/Import is not implemented yet")) {
            _ = try await client.import(Orchestrator_Testing_V1_Empty())
        }
    }

    @Test func malformedRequestIsInvalidArgument() async throws {
        var router = RPCRouter()
        PartialShapes().register(into: &router)
        let route = try #require(router.route(forPath: Methods.unary.path))
        await #expect {
            try await route.handler(InMemorySource([[0xFF, 0xFF]]), InMemorySink(), makeContext(Methods.unary))
        } throws: { error in
            (error as? RPCStatus)?.code == .invalidArgument
        }
    }
}
