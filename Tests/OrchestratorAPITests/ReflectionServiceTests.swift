import GRPCStandardServices
import NGRPC
import OrchestratorAPI
import Testing

@Suite("Server reflection", .timeLimit(.minutes(1)))
struct ReflectionServiceTests {
    typealias Request = Grpc_Reflection_V1_ServerReflectionRequest
    typealias Response = Grpc_Reflection_V1_ServerReflectionResponse

    /// A router like the server's: health and a test service, reflection registered last.
    func makeRouter() -> RPCRouter {
        var router = RPCRouter()
        HealthService().register(into: &router)
        EchoStub().register(into: &router)
        ReflectionService.register(into: &router)
        return router
    }

    /// Sends every request on one v1 stream and returns the answers in order.
    func ask(_ requests: [Request.OneOf_MessageRequest?]) async throws -> [Response] {
        let sink = try await invoke(
            makeRouter(), Grpc_Reflection_V1_ServerReflectionMethods.serverReflectionInfo,
            requests: requests.map { Request(host: "h", messageRequest: $0) })
        return try sink.decoded(as: Response.self)
    }

    func fileNames(_ response: Response) throws -> [String] {
        guard case .fileDescriptorResponse(let files) = response.messageResponse else {
            Issue.record("expected files, got \(String(describing: response.messageResponse))")
            return []
        }
        return try files.fileDescriptorProto.map(descriptorName)
    }

    @Test func listServicesIncludesRouterHealthAndReflection() async throws {
        let responses = try await ask([.listServices("")])
        guard case .listServicesResponse(let list) = try #require(responses.first).messageResponse else {
            Issue.record("expected a service list")
            return
        }
        #expect(
            list.service.map(\.name) == [
                "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection",
                "grpc.reflection.v1alpha.ServerReflection", "orchestrator.testing.v1.Echo",
            ])
        #expect(responses.first?.validHost == "h")
        #expect(responses.first?.originalRequest == Request(host: "h", messageRequest: .listServices("")))
    }

    @Test(arguments: [
        "grpc.health.v1.Health", "grpc.health.v1.Health.Watch", "grpc.health.v1.HealthCheckResponse",
        "grpc.health.v1.HealthCheckResponse.ServingStatus", ".grpc.health.v1.HealthCheckRequest",
        "grpc.health.v1.HealthListResponse.StatusesEntry",
    ])
    func fileContainingSymbol(_ symbol: String) async throws {
        let responses = try await ask([.fileContainingSymbol(symbol)])
        #expect(try fileNames(try #require(responses.first)) == ["grpc/health/v1/health.proto"])
    }

    @Test func fileByNameReturnsTheFileThenEachDependencyOnce() async throws {
        // Pick the generated file with the most transitive imports, so the test follows the API.
        let index = ReflectionIndex(files: GeneratedDescriptors.files)
        let file = try #require(
            GeneratedDescriptors.files.max {
                index.withTransitiveDependencies($0).count < index.withTransitiveDependencies($1).count
            })
        let responses = try await ask([.fileByFilename(file.name)])
        let names = try fileNames(try #require(responses.first))
        #expect(names.first == file.name)
        #expect(Set(names).count == names.count)
        var expected = Set([file.name])
        var pending = file.dependencies
        while let next = pending.popLast() {
            if expected.insert(next).inserted { pending += index.file(named: next)?.dependencies ?? [] }
        }
        #expect(Set(names) == expected)
    }

    @Test func servedBytesAreTheGeneratedDescriptors() async throws {
        let responses = try await ask([.fileByFilename("grpc/reflection/v1/reflection.proto")])
        guard case .fileDescriptorResponse(let files) = try #require(responses.first).messageResponse else {
            Issue.record("expected files")
            return
        }
        let expected = try #require(GeneratedDescriptors.files.first { $0.name == "grpc/reflection/v1/reflection.proto" })
        #expect(files.fileDescriptorProto == [expected.serializedBytes])
    }

    @Test func unknownNamesAreNotFoundInBandAndTheStreamContinues() async throws {
        let responses = try await ask([
            .fileContainingSymbol("no.such.Symbol"),
            .fileByFilename("missing.proto"),
            .fileContainingExtension(
                Grpc_Reflection_V1_ExtensionRequest(containingType: "grpc.health.v1.HealthCheckRequest", extensionNumber: 100)),
            .allExtensionNumbersOfType("no.such.Type"),
            nil,
            .listServices(""),
        ])
        #expect(responses.count == 6)
        let codes = responses.prefix(5).map { response -> Int32? in
            if case .errorResponse(let error) = response.messageResponse { return error.errorCode }
            return nil
        }
        #expect(codes == [5, 5, 5, 5, 3])
        if case .listServicesResponse = responses[5].messageResponse {} else { Issue.record("stream did not continue") }
    }

    @Test func extensionNumbersOfAKnownTypeAreEmpty() async throws {
        let responses = try await ask([.allExtensionNumbersOfType("grpc.health.v1.HealthCheckRequest")])
        #expect(
            responses.first?.messageResponse
                == .allExtensionNumbersResponse(
                    .init(baseTypeName: "grpc.health.v1.HealthCheckRequest", extensionNumber: [])))
    }

    @Test func v1alphaAnswersTheSame() async throws {
        let request = Grpc_Reflection_V1alpha_ServerReflectionRequest(
            host: "", messageRequest: .fileContainingSymbol("grpc.reflection.v1alpha.ServerReflection"))
        let sink = try await invoke(makeRouter(), Grpc_Reflection_V1alpha_ServerReflectionMethods.serverReflectionInfo, requests: [request])
        let response = try #require(try sink.decoded(as: Grpc_Reflection_V1alpha_ServerReflectionResponse.self).first)
        guard case .fileDescriptorResponse(let files) = response.messageResponse else {
            Issue.record("expected files")
            return
        }
        #expect(try files.fileDescriptorProto.map(descriptorName) == ["grpc/reflection/v1alpha/reflection.proto"])
        #expect(response.originalRequest == request)
    }
}

private struct EchoStub: Orchestrator_Testing_V1_EchoProvider {}

/// Field 1 (`name`) of a serialized FileDescriptorProto; protoc writes it first.
func descriptorName(_ bytes: [UInt8]) throws -> String {
    try #require(bytes.count > 2 && bytes[0] == 0x0A && bytes[1] < 0x80)
    let length = Int(bytes[1])
    return String(decoding: bytes[2..<(2 + length)], as: UTF8.self)
}
