import GRPCStandardServices
import Logging
import NGRPC
import OrchestratorAPI

/// The composition root: builds the router from the services, starts the gRPC server, and
/// waits for SIGTERM/SIGINT to shut it down gracefully.
struct ServerRunner {
    let settings: ServerSettings
    let logger: Logger

    func run() async throws {
        let health = HealthService()
        var router = RPCRouter()
        for provider in services() { provider(&router) }
        health.register(into: &router)
        for service in router.serviceNames { health.setStatus(service: service, status: .serving) }
        ReflectionService.register(into: &router)

        var configuration = ServerConfiguration(listeners: listeners(), router: router, interceptors: [TraceLoggingInterceptor(logger: logger)])
        if let threads = settings.ioThreads { configuration.ioThreads = threads }
        configuration.maxReceiveMessageSize = settings.maxReceiveMessageSize
        configuration.maxConcurrentStreams = settings.maxConcurrentStreams
        configuration.shutdownGracePeriod = settings.shutdownGrace
        configuration.logger = Logger(label: "ngrpc")

        let server = GRPCServer(configuration: configuration)
        server.onShutdownStarted { health.shutdown() }
        try await server.start()
        server.installSignalHandlers()
        for address in server.boundAddresses {
            logger.notice("orchestratord ready", metadata: ["grpc": "\(address.host):\(address.port)", "tls": "\(address.isSecure)"])
        }
        await server.waitUntilShutdown()
        logger.notice("orchestratord stopped")
    }

    /// The orchestrator's own services. Methods that later milestones implement answer
    /// UNIMPLEMENTED through the generated default implementations.
    func services() -> [(inout RPCRouter) -> Void] {
        [
            { WorkflowsService().register(into: &$0) },
            { ExecutorsService().register(into: &$0) },
        ]
    }

    func listeners() -> [ServerConfiguration.Listener] {
        var result: [ServerConfiguration.Listener] = []
        if let address = settings.grpcAddress {
            result.append(.init(host: address.host, port: address.port))
        }
        if let address = settings.grpcTLSAddress, let cert = settings.tlsCertFile, let key = settings.tlsKeyFile {
            result.append(.init(host: address.host, port: address.port, tls: .init(certificateChainPath: cert, privateKeyPath: key)))
        }
        return result
    }
}

/// `orchestrator.v1.Workflows`: submission, planning, reads, updates and watch streams arrive
/// with the workflow-service milestone; until then every method answers UNIMPLEMENTED.
struct WorkflowsService: Orchestrator_V1_WorkflowsProvider {}

/// `orchestrator.v1.Executors`: leases, polling and reports arrive with the workflow-service
/// milestone; until then every method answers UNIMPLEMENTED.
struct ExecutorsService: Orchestrator_V1_ExecutorsProvider {}
