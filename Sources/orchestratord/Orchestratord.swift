import ArgumentParser
import Foundation
import Logging
import OrchestratorGRPC
import OrchestratorObservability

/// `orchestratord`: the Orchestrator server.
@main
struct Orchestratord: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "orchestratord",
        abstract: "Plans queries into DAGs of tasks and hands them to executor agents over gRPC.",
        discussion: """
            Every setting can also come from an environment variable (ORCHESTRATOR_<NAME>, e.g. \
            ORCHESTRATOR_GRPC_ADDRESS) or a JSON config file (--config); flags win over the \
            environment, which wins over the file. The resolved settings are printed at start-up.
            """,
        version: OrchestratorRelease.version
    )

    @Option(name: .long, help: "JSON file of setting names to values (e.g. {\"grpc-address\": \"0.0.0.0:50051\"}).")
    var config: String?

    @Option(name: .long, help: "host:port of the cleartext gRPC listener (default 127.0.0.1:50051; env ORCHESTRATOR_GRPC_ADDRESS).")
    var grpcAddress: String?

    @Option(name: .long, help: "host:port of the TLS gRPC listener with ALPN h2 (env ORCHESTRATOR_GRPC_TLS_ADDRESS).")
    var grpcTlsAddress: String?

    @Option(name: .long, help: "PEM certificate chain for TLS (env ORCHESTRATOR_TLS_CERT_FILE).")
    var tlsCertFile: String?

    @Option(name: .long, help: "PEM private key for TLS (env ORCHESTRATOR_TLS_KEY_FILE).")
    var tlsKeyFile: String?

    @Option(name: .long, parsing: .unconditional, help: "Number of I/O threads (default: one per core; env ORCHESTRATOR_IO_THREADS).")
    var ioThreads: String?

    @Option(name: .long, parsing: .unconditional, help: "Largest request message in bytes (default 4194304; env ORCHESTRATOR_MAX_RECEIVE_MESSAGE_SIZE).")
    var maxReceiveMessageSize: String?

    @Option(name: .long, parsing: .unconditional, help: "Largest response message in bytes (default: the larger of 64 MiB and 2 × max-receive-message-size; env ORCHESTRATOR_MAX_SEND_MESSAGE_SIZE).")
    var maxSendMessageSize: String?

    @Option(name: .long, parsing: .unconditional, help: "HTTP/2 streams per connection (default 100; env ORCHESTRATOR_MAX_CONCURRENT_STREAMS).")
    var maxConcurrentStreams: String?

    @Option(name: .long, parsing: .unconditional, help: "Seconds in-flight calls may take to finish on SIGTERM/SIGINT (default 10; env ORCHESTRATOR_SHUTDOWN_GRACE).")
    var shutdownGrace: String?

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical (default info; env ORCHESTRATOR_LOG_LEVEL).")
    var logLevel: String?

    @Option(name: .long, help: "Log format: json or text (default json; env ORCHESTRATOR_LOG_FORMAT).")
    var logFormat: String?

    @Option(name: .long, help: "host:port of the admin HTTP server; port 0 picks one, none or empty disables it (default 127.0.0.1:9090; env ORCHESTRATOR_ADMIN_ADDRESS).")
    var adminAddress: String?

    @Option(name: .long, help: "PostgreSQL URL (env ORCHESTRATOR_DATABASE_URL); unset runs an embedded cluster in --data-dir.")
    var databaseUrl: String?

    @Option(name: .long, help: "Folder of the embedded PostgreSQL cluster (default .orchestrator/pgdata; env ORCHESTRATOR_DATA_DIR).")
    var dataDir: String?

    @Option(name: .long, parsing: .unconditional, help: "Port of the embedded PostgreSQL cluster (default 54329; env ORCHESTRATOR_EMBEDDED_PORT).")
    var embeddedPort: String?

    @Option(name: .long, parsing: .unconditional, help: "Most PostgreSQL connections (default 16; env ORCHESTRATOR_DATABASE_POOL_SIZE).")
    var databasePoolSize: String?

    @Option(name: .long, help: "Capability catalog JSON for the catalog planner (env ORCHESTRATOR_CATALOG_FILE).")
    var catalogFile: String?

    @Option(name: .long, parsing: .unconditional, help: "Default lease time-to-live in seconds (default 30; env ORCHESTRATOR_LEASE_TTL).")
    var leaseTtl: String?

    @Option(name: .long, parsing: .unconditional, help: "Heartbeat interval asked of executors, in seconds (default 10; env ORCHESTRATOR_HEARTBEAT_INTERVAL).")
    var heartbeatInterval: String?

    @Option(name: .long, parsing: .unconditional, help: "Keep a finished workflow this long, then delete it with its tasks and events: seconds, or 30d, 12h, 90m; off or 0 keeps all (default off; env ORCHESTRATOR_RETENTION).")
    var retention: String?

    @Option(name: .long, help: "Hand a new workflow's first tasks to idle executor streams as it is stored: on or off (default on; env ORCHESTRATOR_DIRECT_DISPATCH).")
    var directDispatch: String?

    @Option(name: .long, help: "OTLP/HTTP collector base URL for trace export, e.g. http://127.0.0.1:4318 (default: off; env ORCHESTRATOR_OTLP_ENDPOINT).")
    var otlpEndpoint: String?

    @Option(name: .long, help: "service.name of exported spans (default orchestratord; env ORCHESTRATOR_OTLP_SERVICE_NAME).")
    var otlpServiceName: String?

    @Option(name: .long, parsing: .unconditional, help: "Fraction in 0...1 of traces started here that are recorded (default 1; env ORCHESTRATOR_TRACE_SAMPLE_RATIO).")
    var traceSampleRatio: String?

    @Option(name: .long, help: "Authentication: none (development) or jwt (default none; env ORCHESTRATOR_AUTH).")
    var auth: String?

    @Option(name: .long, help: "HS256 secret file or PEM public key for --auth jwt (env ORCHESTRATOR_JWT_KEY_FILE).")
    var jwtKeyFile: String?

    @Option(name: .long, help: "JWKS file of verification keys, several by kid (env ORCHESTRATOR_JWKS_FILE).")
    var jwksFile: String?

    @Option(name: .long, help: "Required JWT issuer (iss) (env ORCHESTRATOR_JWT_ISSUER).")
    var jwtIssuer: String?

    @Option(name: .long, help: "Required JWT audience (aud) (env ORCHESTRATOR_JWT_AUDIENCE).")
    var jwtAudience: String?

    @Option(name: .long, parsing: .unconditional, help: "Seconds of clock skew allowed for exp/nbf (default 60; env ORCHESTRATOR_JWT_CLOCK_SKEW).")
    var jwtClockSkew: String?

    @OptionGroup var tlsAndLimits: TLSAndLimitFlags

    /// Flag values by setting key; only the flags actually given.
    var flagValues: [String: String] {
        let pairs: [(String, String?)] = [
            ("grpc-address", grpcAddress), ("grpc-tls-address", grpcTlsAddress),
            ("tls-cert-file", tlsCertFile), ("tls-key-file", tlsKeyFile), ("io-threads", ioThreads),
            ("max-receive-message-size", maxReceiveMessageSize), ("max-send-message-size", maxSendMessageSize),
            ("max-concurrent-streams", maxConcurrentStreams),
            ("shutdown-grace", shutdownGrace), ("log-level", logLevel), ("log-format", logFormat), ("admin-address", adminAddress), ("database-url", databaseUrl),
            ("data-dir", dataDir), ("embedded-port", embeddedPort), ("database-pool-size", databasePoolSize),
            ("auth", auth), ("jwt-key-file", jwtKeyFile), ("jwks-file", jwksFile), ("jwt-issuer", jwtIssuer),
            ("jwt-audience", jwtAudience), ("jwt-clock-skew", jwtClockSkew),
            ("catalog-file", catalogFile), ("lease-ttl", leaseTtl), ("heartbeat-interval", heartbeatInterval),
            ("retention", retention), ("direct-dispatch", directDispatch),
            ("otlp-endpoint", otlpEndpoint), ("otlp-service-name", otlpServiceName), ("trace-sample-ratio", traceSampleRatio),
        ]
        return Dictionary(uniqueKeysWithValues: pairs.compactMap { key, value in value.map { (key, $0) } })
            .merging(tlsAndLimits.values) { flag, _ in flag }
    }

    static func main() async {
        let arguments = Array(CommandLine.arguments.dropFirst())
        if let problem = MissingValueCheck.problem(in: arguments, options: SettingsCatalog.keys.union(["config"])) {
            exit(withError: ValidationError(problem))
        }
        do {
            var command = try parseAsRoot(arguments)
            if var asynchronous = command as? any AsyncParsableCommand {
                try await asynchronous.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }

    func run() async throws {
        // Until the server's own handlers take them (`ServerRunner.logUserSignals`): their default
        // is to terminate, which a log-rotation script's SIGUSR1 did during start-up.
        signal(SIGUSR1, SIG_IGN)
        signal(SIGUSR2, SIG_IGN)
        let file: [String: String]
        do {
            file = try config.map { try loadConfigFile($0, known: SettingsCatalog.keys) } ?? [:]
        } catch let error as ConfigFileError {
            // A configuration mistake like any other setting's: exit 64 (it was 1), naming the file.
            throw ValidationError(error.description)
        }
        let settings = ResolvedSettings.resolve(
            SettingsCatalog.all, flags: flagValues, environment: ProcessInfo.processInfo.environment, file: file)
        let serverConfiguration: ServerSettings
        do {
            serverConfiguration = try ServerSettings(settings, fileDescriptors: FileDescriptorLimit.raise())
        } catch let error as SettingsError {
            throw ValidationError(error.description)
        }
        LogLevelControl.process.configure(serverConfiguration.logLevel)
        ObservabilityLogging.bootstrap(format: serverConfiguration.observability.logFormat, control: .process)
        let logger = Logger(label: "orchestratord")
        logger.notice("orchestratord \(OrchestratorRelease.version) starting with settings:\n\(settings.banner.joined(separator: "\n"))")
        let unknown = ResolvedSettings.unknownEnvironmentVariables(ProcessInfo.processInfo.environment, definitions: SettingsCatalog.all)
        if !unknown.isEmpty {
            logger.warning(
                "environment variables that are no setting of orchestratord, ignored (misspelt?)",
                metadata: ["variables": "\(unknown.joined(separator: ", "))"])
        }
        let descriptors = serverConfiguration.fileDescriptors
        logger.info(
            "file descriptor limit", metadata: [
                "soft": "\(descriptors.soft)", "hard": "\(descriptors.hard)", "raised_from": "\(descriptors.original)",
                "max_connections": "\(serverConfiguration.maxConnections.map(String.init) ?? "no limit")",
                "max_connections_per_client": "\(serverConfiguration.limits.maxConnectionsPerClient.map(String.init) ?? "no limit")",
            ])
        do {
            try await ServerRunner(settings: serverConfiguration, logger: logger).run()
        } catch let exit as ExitCode {
            throw exit
        } catch {
            // Once logging is set up, why the server could not start (or stopped) is a log line
            // like the others, JSON by default; ArgumentParser's plain "Error: …" broke the
            // stream a log collector parses. A setting found unusable only now (the database
            // URL, the admin address, the OTLP endpoint) still exits 64, as every setting's
            // mistake does; the admin address in use exited 1 beside the gRPC address's 64.
            let setting = (error as? ValidationError) ?? (error as? SettingsError).map { ValidationError($0.description) }
            logger.critical("orchestratord failed", metadata: ["error": "\(setting?.message ?? "\(error)")"])
            throw setting == nil ? ExitCode.failure : ExitCode.validationFailure
        }
    }
}
