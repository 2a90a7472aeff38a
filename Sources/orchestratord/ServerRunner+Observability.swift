import Logging
import NGRPC
import OrchestratorApp
import OrchestratorMetrics
import OrchestratorObservability
import OrchestratorStore
import PostgresClient
import Synchronization

/// The server's metrics registry, the admin HTTP server and the readiness checks, wired into the
/// composition root with one call per stage: `start` (before anything else, so `/healthz`
/// answers during start-up and `/readyz` says what is still missing), `attach` the database,
/// dispatch and gRPC server as they come up, `stop` at the end.
///
/// Thread-safety: the attached parts are guarded by `parts`' mutex; everything else is immutable.
final class ServerObservability: Sendable {
    let registry = MetricsRegistry()
    let dispatch: DispatchMetrics
    let planning: PlanningMetrics
    let postgresInstrumentation: PostgresInstrumentation
    private let admin: Mutex<AdminHTTPServer?>
    private let gauges = StoreGaugeCache()

    private struct Parts {
        var pool: PostgresPool?
        var probe: PostgresProbe?
        var server: GRPCServer?
        var dispatch: DispatchService?
    }
    private let parts = Mutex(Parts())

    private init() {
        dispatch = DispatchMetrics(registry: registry)
        planning = PlanningMetrics(registry: registry)
        let calls = registry.histogram(
            "orchestrator_db_query_duration_seconds",
            help: "Database calls (a statement, pipeline, batch or COPY; BEGIN and COMMIT each count) as their callers waited for them, by outcome (ok, error).",
            labels: ["outcome"], buckets: Histogram.latencyBounds)
        let ok = calls.labels("ok")
        let failed = calls.labels("error")
        let acquire = registry.histogram(
            "orchestrator_db_pool_acquire_seconds", help: "Time callers waited for a pooled database connection.",
            buckets: Histogram.latencyBounds).labels()
        let connects = registry.counter(
            "orchestrator_db_connect_attempts_total",
            help: "Attempts to open a database connection, by outcome (ok, error); errors climb during an outage.",
            labels: ["outcome"])
        let connected = connects.labels("ok")
        let connectFailed = connects.labels("error")
        postgresInstrumentation = PostgresInstrumentation(
            callFinished: { elapsed, error in (error ? failed : ok).observe(elapsed) },
            connectionAcquired: { waited in acquire.observe(waited) },
            connectAttempted: { error in (error ? connectFailed : connected).increment() })
        admin = Mutex(nil)
    }

    /// Makes the registry and starts the admin server (unless disabled).
    /// - Throws: when the admin address cannot be bound.
    static func start(_ settings: ObservabilitySettings, logger: Logger) throws -> ServerObservability {
        let observability = ServerObservability()
        observability.registry.register(
            "orchestrator_start_time_seconds", help: "When this server process started, in Unix seconds.", type: .gauge
        ) { [started = Double(SystemWallClock().now()) / 1000] in [([], started)] }
        ProcessMetrics.register(into: observability.registry)
        guard let address = settings.adminAddress else {
            logger.notice("admin HTTP server disabled (admin-address is empty or none)")
            return observability
        }
        var routes = AdminEndpoints.routes(
            registry: observability.registry, logLevel: .process, readiness: observability.readinessChecks(),
            beforeScrape: { [gauges = observability.gauges] in await gauges.refreshIfStale() },
            logger: Logger(label: "orchestrator.admin"))
        routes.add(.get, "/executors") { [observability] _ in
            ExecutorsEndpoint.response(observability.parts.withLock { $0.dispatch }?.executorSessions, now: SystemWallClock().now())
        }
        let server: AdminHTTPServer
        do {
            server = try AdminHTTPServer(host: address.host, port: address.port, routes: routes, logger: logger)
        } catch let error as AdminHTTPServer.StartError {
            throw SettingsError(description: "admin-address: \(error.description) (set admin-address to another host:port, or to an empty value to disable it)")
        }
        observability.admin.withLock { $0 = server }
        let bound = HostPort("\(address.host.contains(":") ? "[\(address.host)]" : address.host):\(server.port)")
        logger.notice("admin HTTP listening", metadata: [
            "admin": "\(bound?.description ?? "\(address.host):\(server.port)")", "endpoints": "/healthz /readyz /metrics /loglevel /executors",
        ])
        return observability
    }

    /// The database is open: pool metrics, database-wide gauges, and the database readiness check.
    func attach(pool: PostgresPool, probe: PostgresProbe) {
        parts.withLock {
            $0.pool = pool
            $0.probe = probe
        }
        gauges.attach(StoreGauges(pool: pool))
        registry.register(
            "orchestrator_db_pool_connections", help: "Pooled database connections, by state (in_use, idle, opening: being connected, no session yet).", type: .gauge,
            labels: ["state"]
        ) {
            let statistics = pool.statistics
            let opening = pool.openingCount
            return [
                (["in_use"], Double(max(0, statistics.lent - opening))), (["idle"], Double(statistics.open - statistics.lent)),
                (["opening"], Double(opening)),
            ]
        }
        registry.register("orchestrator_db_pool_max_connections", help: "Most connections the pool opens.", type: .gauge) {
            [([], Double(pool.configuration.maxConnections))]
        }
        registry.register("orchestrator_db_pool_waiting", help: "Callers waiting for a pooled connection now.", type: .gauge) {
            [([], Double(pool.waiterCount))]
        }
        let gauges = self.gauges
        registry.register(
            "orchestrator_ready_tasks", help: "Ready tasks waiting for an executor, by required capability (database-wide; a task needing several capabilities counts under each, one needing none under \"\"; the 100 capabilities with most tasks, the rest summed under \"(other capabilities)\").",
            type: .gauge, labels: ["capability"]
        ) { gauges.current.readyByCapability.sorted { $0.key < $1.key }.map { ([$0.key], Double($0.value)) } }
        registry.register(
            "orchestrator_tasks_leased", help: "Tasks under a lease now (states leased and running), database-wide.", type: .gauge
        ) { [([], Double(gauges.current.tasksByState["leased", default: 0] + gauges.current.tasksByState["running", default: 0]))] }
        registry.register(
            "orchestrator_tasks_retry_waiting", help: "Tasks waiting out a retry backoff before they are ready again, database-wide.", type: .gauge
        ) { [([], Double(gauges.current.tasksByState["retry_wait", default: 0]))] }
        registry.register(
            "orchestrator_workflows", help: "Workflows by state (planning, running, succeeded, failed, cancelled), database-wide.", type: .gauge,
            labels: ["state"]
        ) {
            let byState = gauges.current.workflowsByState
            return ["planning", "running", "succeeded", "failed", "cancelled"].map { ([$0], Double(byState[$0, default: 0])) }
        }
    }

    /// Dispatch is running: leases and lease streams held by this process.
    func attach(dispatch service: DispatchService) {
        parts.withLock { $0.dispatch = service }
        registry.register("orchestrator_leases_held", help: "Leases held by executors connected to this server.", type: .gauge) {
            [([], Double(service.liveLeaseCount))]
        }
        registry.register("orchestrator_executor_sessions", help: "Executor lease streams open on this server.", type: .gauge) {
            [([], Double(service.sessionCount))]
        }
        registry.register(
            "orchestrator_executor_sessions_by_capability",
            help: "Executor lease streams open on this server and taking work (not draining), by advertised capability "
                + "(one advertising none under \"\"). Ready tasks of a capability no server has a stream for wait until one connects.",
            type: .gauge, labels: ["capability"]
        ) { ExecutorsEndpoint.byCapability(service.executorSessions).sorted { $0.key < $1.key }.map { ([$0.key], Double($0.value)) } }
    }

    /// What retention passes deleted, for `RetentionService` (counted only when retention is on).
    func retentionCounter() -> @Sendable (PrunedWorkflows) -> Void {
        let family = registry.counter(
            "orchestrator_retention_pruned_total",
            help: "Rows deleted by retention (--retention) on this server, by kind (workflows, tasks, events).", labels: ["kind"])
        let (workflows, tasks, events) = (family.labels("workflows"), family.labels("tasks"), family.labels("events"))
        return { pass in
            workflows.increment(by: Double(pass.workflows))
            tasks.increment(by: Double(pass.tasks))
            events.increment(by: Double(pass.events))
        }
    }

    /// The gRPC server is listening: connection and stream counts, and the listener readiness check.
    func attach(server: GRPCServer) {
        parts.withLock { $0.server = server }
        ServerMetrics.register(server, into: registry)
    }

    /// Adds the log-context interceptor (outermost, so every line of a call carries its
    /// `trace_id`) and the metrics interceptor right after the tracing ones, before auth and
    /// rate limiting (the agreed order), so refused calls are counted too.
    func installInterceptors(into configuration: inout ServerConfiguration) {
        var interceptors = configuration.interceptors
        // Tracing interceptors are found by type name: they live in targets this file does not import.
        let tracingEnd = (interceptors.lastIndex { "\(type(of: $0))".contains("Trac") } ?? -1) + 1
        interceptors.insert(MetricsInterceptor(registry: registry, methodPaths: configuration.router.routes.keys), at: tracingEnd)
        interceptors.insert(LogContextInterceptor(), at: 0)
        configuration.interceptors = interceptors
    }

    func stop() {
        admin.withLock { $0 }?.stop()
    }

    private func readinessChecks() -> [ReadinessCheck] {
        let expected = OrchestratorMigrations.all.map(\.version).max() ?? 0
        return [
            ReadinessCheck(name: "database") { [self] in
                guard let probe = parts.withLock({ $0.probe }) else { return "not open yet" }
                // Its own connection (`PostgresProbe`): a busy pool is not an unready database.
                guard let applied = await probe.integer(ServerRunner.appliedMigrationSQL).map(Int.init) else {
                    return "unreachable: the database did not answer"
                }
                if applied < expected { return "migrations not applied (database at \(applied), this server needs \(expected))" }
                // A newer server migrated the database: this one keeps running (a rolling
                // upgrade) but should take no new traffic; it reported ready before.
                if applied > expected {
                    return "schema newer than this server (database at migration \(applied), this server ships up to \(expected)): upgrade it"
                }
                return nil
            },
            ReadinessCheck(name: "grpc") { [self] in
                guard let server = parts.withLock({ $0.server }) else { return "listeners not bound yet" }
                if !server.isServing { return "shutting down" }
                return server.boundAddresses.isEmpty ? "no listener bound" : nil
            },
        ]
    }
}

/// The last `StoreGauges` snapshot, refreshed at most once a second by scrapes.
final class StoreGaugeCache: Sendable {
    private struct State {
        var reader: StoreGauges?
        var snapshot = StoreGauges.Snapshot()
        var fetchedAt: ContinuousClock.Instant?
    }
    private let state = Mutex(State())
    private let maxAge: Duration = .seconds(1)

    func attach(_ reader: StoreGauges) {
        state.withLock { $0.reader = reader }
    }

    var current: StoreGauges.Snapshot { state.withLock { $0.snapshot } }

    /// Reads the database unless the snapshot is younger than a second. On failure the old values
    /// stay (a scrape must not fail because the database is slow; `/readyz` reports it).
    func refreshIfStale() async {
        let now = ContinuousClock.now
        let reader = state.withLock { state -> StoreGauges? in
            if let fetchedAt = state.fetchedAt, now - fetchedAt < maxAge { return nil }
            return state.reader
        }
        guard let reader else { return }
        guard let snapshot = await withTimeout(.seconds(2), { try? await reader.read() }) ?? nil else { return }
        state.withLock { state in
            state.snapshot = snapshot
            state.fetchedAt = now
        }
    }
}
