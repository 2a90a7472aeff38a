public import NGRPC
public import OrchestratorAPI

/// gRPC server reflection (https://github.com/grpc/grpc/blob/master/doc/server-reflection.md),
/// served as both `grpc.reflection.v1.ServerReflection` and the older
/// `grpc.reflection.v1alpha.ServerReflection` that many tools still call first.
///
/// Register it last, so that the services it lists are the ones in the router:
/// ```swift
/// ReflectionService.register(into: &router)
/// ```
/// Immutable after `init`, so one instance serves every call concurrently.
public struct ReflectionService: Sendable {
    public static let serviceNames = [
        Grpc_Reflection_V1_ServerReflectionMethods.serverReflectionInfo.service,
        Grpc_Reflection_V1alpha_ServerReflectionMethods.serverReflectionInfo.service,
    ]

    /// Fully qualified names answered to `list_services`, sorted.
    public let listedServices: [String]
    public let index: ReflectionIndex

    /// - Parameters:
    ///   - services: names to list (the reflection services themselves are added).
    ///   - files: descriptors to serve; every generated file by default.
    public init(services: [String], files: [DescriptorFile] = GeneratedDescriptors.files) {
        listedServices = Array(Set(services + Self.serviceNames)).sorted()
        index = ReflectionIndex(files: files)
    }

    /// Registers both reflection versions, listing every service already in `router`.
    public static func register(into router: inout RPCRouter, files: [DescriptorFile] = GeneratedDescriptors.files) {
        ReflectionService(services: router.serviceNames, files: files).register(into: &router)
    }

    public func register(into router: inout RPCRouter) {
        ReflectionV1Provider(service: self).register(into: &router)
        ReflectionV1AlphaProvider(service: self).register(into: &router)
    }

    /// The answer to one request of the stream. Failures are answered in-band with an
    /// `error_response` (as gRPC's own servers do), so the stream stays usable.
    public func answer(_ request: Grpc_Reflection_V1_ServerReflectionRequest) -> Grpc_Reflection_V1_ServerReflectionResponse {
        var response = Grpc_Reflection_V1_ServerReflectionResponse(validHost: request.host, originalRequest: request)
        response.messageResponse = messageResponse(for: request.messageRequest)
        return response
    }

    private func messageResponse(
        for request: Grpc_Reflection_V1_ServerReflectionRequest.OneOf_MessageRequest?
    ) -> Grpc_Reflection_V1_ServerReflectionResponse.OneOf_MessageResponse {
        switch request {
        case .listServices:
            return .listServicesResponse(.init(service: listedServices.map { .init(name: $0) }))
        case .fileByFilename(let name):
            guard let file = index.file(named: name) else {
                return error(.notFound, "file not found: \(name)")
            }
            return files(file)
        case .fileContainingSymbol(let symbol):
            guard let file = index.file(containingSymbol: symbol) else {
                return error(.notFound, "symbol not found: \(symbol)")
            }
            return files(file)
        case .fileContainingExtension(let request):
            // proto3 files declare no extensions, so no file can contain one.
            return error(.notFound, "extension \(request.extensionNumber) of \(request.containingType) not found")
        case .allExtensionNumbersOfType(let type):
            guard index.contains(symbol: type) else {
                return error(.notFound, "type not found: \(type)")
            }
            return .allExtensionNumbersResponse(.init(baseTypeName: type, extensionNumber: []))
        case nil:
            return error(.invalidArgument, "the request sets no message_request")
        }
    }

    private func files(_ file: DescriptorFile) -> Grpc_Reflection_V1_ServerReflectionResponse.OneOf_MessageResponse {
        .fileDescriptorResponse(.init(fileDescriptorProto: index.withTransitiveDependencies(file).map(\.serializedBytes)))
    }

    private func error(_ code: RPCStatus.Code, _ message: String) -> Grpc_Reflection_V1_ServerReflectionResponse.OneOf_MessageResponse {
        .errorResponse(.init(errorCode: Int32(code.rawValue), errorMessage: message))
    }
}
