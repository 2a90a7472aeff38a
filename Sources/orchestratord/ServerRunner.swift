import ArgumentParser
import GRPCStandardServices
import Logging
import NGRPC
import OrchestratorAPI
import OrchestratorApp
import OrchestratorDomain
import OrchestratorGRPC
import OrchestratorStore

/// The composition root: opens the database, builds the application services on the store,
/// registers the gRPC services, starts the server, and shuts everything down in reverse order on
/// SIGTERM/SIGINT.
struct ServerRunner {
    let settings: ServerSettings
    let logger: Logger

    func run() async throws {
        try checkListeners()
        let tracing = try TracingRuntime.start(settings.tracing, logger: logger)
        let (registry, catalog) = try PlannerSetup.standard(catalogPath: settings.catalogFile, logger: logger)
        let observability = try ServerObservability.start(settings.observability, logger: logger)
        let database = try await Database.open(settings, logger: logger, instrumentation: observability.postgresInstrumentation)
        observability.attach(pool: database.pool, probe: database.probe)
        let store: PostgresStore
        do {
            store = try PostgresStore(pool: database.pool, conninfo: database.conninfo)
            try await store.start()
        } catch {
            await database.close(logger: logger)
            throw error
        }

        await warnIfOtherTenantsStored(pool: database.pool)

        let signals = ChangeSignals()
        let feed = signals.follow(store)
        var dispatchConfiguration = DispatchConfiguration()
        dispatchConfiguration.leaseTTL = settings.leaseTTL
        dispatchConfiguration.heartbeatInterval = settings.heartbeatInterval
        dispatchConfiguration.startupGrace = settings.leaseTTL
        // A lease's database expiry can be as little as a third of its TTL ahead (the keeper
        // extends at two thirds): an outage that long may already have let one run out.
        dispatchConfiguration.slowSweep = min(.seconds(3), settings.leaseTTL / 3)
        dispatchConfiguration.maxAssignmentBytes = settings.limits.maxAssignmentSize
        dispatchConfiguration.assignmentSize = { Orchestrator_V1_Assignment.encodedSize(of: $0) }
        let planning = PlanningService(registry: registry, limits: settings.limits.validation, metrics: observability.planning)
        let watch = WatchService(events: store, signals: signals)
        // Delegated planning: a planning task's answer (a serialized orchestrator.v1.Dag) is adopted as the next version.
        let adoption = PlanAdoptionService(
            planning: store, workflows: store, decode: ProposedGraphDecoding.decoder(strings: StringLengthGuard(
                maxBytes: settings.limits.maxStringLength, maxEntries: Self.wireEntryLimit(settings.limits.validation.maxTasks),
                maxEdgeEntries: Self.wireEntryLimit(settings.limits.validation.maxEdges))), limits: planning.limits,
            generatorKey: DelegatedPlanner().taskKey)
        let dispatch = DispatchService(store: store, signals: signals, configuration: dispatchConfiguration, planAdoption: adoption,
            metrics: observability.dispatch)
        let submission = SubmissionService(
            planning: planning, workflows: store, watch: watch, signals: signals, direct: settings.directDispatch ? dispatch : nil,
            budget: AssignmentBudget(maxAssignmentBytes: dispatchConfiguration.maxAssignmentBytes))
        observability.attach(dispatch: dispatch)
        let updates = DagUpdateService(
            workflows: store, limits: planning.limits, signals: signals,
            budget: AssignmentBudget(maxAssignmentBytes: dispatchConfiguration.maxAssignmentBytes))
        let background = dispatch.runBackgroundLoops()
        let retention = settings.retention.map {
            RetentionService(retention: $0, store: store, pruned: observability.retentionCounter()).run()
        }
        if retention == nil { logger.info("retention off: finished workflows are kept for ever (set retention to delete old ones)") }

        let health = HealthService()
        var router = RPCRouter()
        WorkflowsService(
            planning: WorkflowsPlanningHandler(planning: planning, catalog: catalog), submission: submission, updates: updates,
            workflows: store, watch: watch, dispatch: dispatch, audit: store, maxAnswerBytes: settings.maxSendMessageSize
        ).register(into: &router)
        ExecutorsService(dispatch: dispatch, leaseTTLMillis: Int64(settings.leaseTTL.components.seconds) * 1000).register(into: &router)
        health.register(into: &router)
        for service in router.serviceNames { health.setStatus(service: service, status: .serving) }
        let databaseHealth = followDatabaseHealth(
            health, services: [MethodAccess.workflowsService, MethodAccess.executorsService], probe: database.probe)
        ReflectionService.register(into: &router)

        // Order: tracing/logging outermost, then auth (docs/SECURITY.md).
        var configuration = ServerConfiguration(
            listeners: listeners(), router: router, interceptors: [TraceLoggingInterceptor(logger: logger)] + [authInterceptor()].compactMap { $0 })
        // Span per RPC right after the outermost trace-logging interceptor, before metrics and auth.
        configuration.interceptors.insert(contentsOf: tracing.interceptors, at: min(1, configuration.interceptors.count))
        // Last, after auth: the rate limit keys on the authenticated caller (docs/SECURITY.md, "Limits").
        configuration.interceptors += limitInterceptors()
        applyLimits(to: &configuration)
        if let threads = settings.ioThreads { configuration.ioThreads = threads }
        configuration.maxReceiveMessageSize = settings.maxReceiveMessageSize
        configuration.maxSendMessageSize = settings.maxSendMessageSize
        configuration.maxConcurrentStreams = settings.maxConcurrentStreams
        configuration.shutdownGracePeriod = settings.shutdownGrace
        configuration.logger = Logger(label: "ngrpc")
        observability.installInterceptors(into: &configuration)

        let server = GRPCServer(configuration: configuration)
        server.onShutdownStarted {
            health.shutdown()
            dispatch.beginShutdown()
            // Watches, long polls and SubmitQuery waits end now with UNAVAILABLE (and how to go
            // on) rather than holding the grace period and then losing their connection.
            signals.beginShutdown()
        }
        do {
            try await server.start()
        } catch {
            background.cancel()
            retention?.cancel()
            feed.cancel()
            store.close()
            await database.close(logger: logger)
            throw error
        }
        await server.installSignalHandlers()
        observability.attach(server: server)
        await installTLSReload(server)
        await logUserSignals(server)
        for address in server.boundAddresses {
            // IPv6 in brackets, as --grpc-address takes it ("::1:50051" read as a host of its own).
            let host = address.host.contains(":") ? "[\(address.host)]" : address.host
            logger.notice("orchestratord ready", metadata: ["grpc": "\(host):\(address.port)", "tls": "\(address.isSecure)"])
        }
        await server.waitUntilShutdown()
        databaseHealth.cancel()
        background.cancel()
        retention?.cancel()
        feed.cancel()
        store.close()
        await database.close(logger: logger)
        await tracing.shutdown(logger: logger)
        observability.stop()
        logger.notice("orchestratord stopped")
    }

    func listeners() -> [ServerConfiguration.Listener] { namedListeners().map(\.listener) }

    /// Each gRPC listener with the setting that configures its address.
    func namedListeners() -> [(setting: String, listener: ServerConfiguration.Listener)] {
        var result: [(setting: String, listener: ServerConfiguration.Listener)] = []
        if let address = settings.grpcAddress {
            result.append(("grpc-address", .init(host: address.host, port: address.port)))
        }
        if let address = settings.grpcTLSAddress, let cert = settings.tlsCertFile, let key = settings.tlsKeyFile {
            result.append((
                "grpc-tls-address",
                .init(host: address.host, port: address.port, tls: clientCertificates(.init(certificateChainPath: cert, privateKeyPath: key)))
            ))
        }
        return result
    }

    /// Refuses listeners the server could not start, before anything touches the database: a
    /// TLS file that does not load or an address in use was found only after the migrations ran,
    /// and a newer schema cannot be undone but by a restore (found by black-box testing). Exit 64,
    /// naming the setting, as for every other setting's mistake.
    func checkListeners() throws {
        let named = namedListeners()
        let problems = GRPCServer.preflight(named.map(\.listener))
        guard let first = problems.first else { return }
        // The TLS settings the listener was given (the client CA was named even when unset).
        let tlsSettings = ["tls-cert-file", "tls-key-file"]
            + (named[first.listenerIndex].listener.tls?.clientCAPath == nil ? [] : ["tls-client-ca-file"])
        let setting = first.isTLS ? tlsSettings.joined(separator: ", ") : named[first.listenerIndex].setting
        throw ValidationError("\(setting): \(first.description)")
    }
}
