import ArgumentParser
import GRPCStandardServices
import Glibc
import Logging
import NGRPC
import OrchestratorAPI

/// The test-only Echo server used by Tests/interop and `tools/bench rpc`. Prints one line
/// `listening on HOST:PORT (h2c|tls)` per listener once bound, so callers can pass port 0.
@main
struct InteropTestServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "InteropTestServer",
        abstract: "Serves orchestrator.testing.v1.Echo, grpc.health.v1.Health and server reflection.")

    @Option(help: "Address to bind.")
    var host = "127.0.0.1"

    @Option(help: "Cleartext (h2c) port; 0 picks a free one.")
    var port = 50052

    @Option(help: "TLS port (ALPN h2); needs --cert and --key; 0 picks a free one.")
    var tlsPort: Int?

    @Option(help: "PEM certificate chain for TLS.")
    var cert: String?

    @Option(help: "PEM private key for TLS.")
    var key: String?

    @Option(help: "Largest request message accepted, in bytes.")
    var maxReceiveSize = 4 * 1024 * 1024

    @Option(help: "Bytes of partly received request messages one connection may hold (default: the transport's, 4 × max-receive-size).")
    var maxConnectionReceiveBuffer: Int?

    @Option(help: "Bytes of partly received request messages all connections may hold (default: the transport's, 256 × max-receive-size).")
    var maxServerReceiveBuffer: Int?

    @Option(help: "I/O threads (default: one per core).")
    var ioThreads: Int?

    @Option(help: "Where Echo/Get runs: inline (synchronously on the I/O thread, a Task there only to pause for delay_ms), io-thread (a Task on the I/O thread) or pool (a Task on the Swift concurrency pool, like the other methods).")
    var echoGet: EchoGetExecution = .inline

    @Option(help: "Milliseconds between server keepalive PINGs on a quiet connection (0 disables; default: the transport's).")
    var keepaliveIntervalMs: Int?

    @Option(help: "Milliseconds to wait for a keepalive PING's ACK before closing (default: the transport's).")
    var keepaliveTimeoutMs: Int?

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel = "notice"

    @Option(help: "PEM file of the CAs whose client certificates the TLS listener accepts.")
    var clientCa: String?

    @Option(help: "Client certificates on the TLS listener: none, optional or require.")
    var clientAuth = "none"

    @Option(help: "Most simultaneous connections from one client IP (default: no limit).")
    var maxConnectionsPerClient: Int?

    @Option(help: "SETTINGS_MAX_HEADER_LIST_SIZE: largest request metadata in bytes (default: the transport's).")
    var maxHeaderListSize: Int?

    @Option(help: "Calls per second per client IP (token bucket); 0 disables.")
    var rateLimitRps: Double = 0

    @Option(help: "Token bucket size: calls allowed back to back.")
    var rateLimitBurst = 10

    func validate() throws {
        if tlsPort != nil && (cert == nil || key == nil) {
            throw ValidationError("--tls-port needs --cert and --key")
        }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("unknown --log-level \(logLevel)") }
        guard let mode = ServerConfiguration.TLS.ClientAuthentication(rawValue: clientAuth) else {
            throw ValidationError("--client-auth must be none, optional or require")
        }
        if mode != .none && clientCa == nil { throw ValidationError("--client-auth \(clientAuth) needs --client-ca") }
    }

    func run() async throws {
        let level = Logger.Level(rawValue: logLevel) ?? .notice
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }

        let health = HealthService()
        health.setStatus(service: Orchestrator_Testing_V1_EchoMethods.get.service, status: .serving)
        var router = RPCRouter()
        let echo = EchoService(ledger: CancellationLedger())
        echo.register(into: &router)
        health.register(into: &router)
        // Echo/Get never blocks (its delay_ms is a cancellable sleep), so it runs on the connection's
        // I/O thread: inline without a Task unless it has to pause, and then as a Task on that thread
        // (tools/bench rpc measures this method).
        if echoGet != .pool { router.setExecution(.ioThread, for: Orchestrator_Testing_V1_EchoMethods.get) }
        if echoGet == .inline { router.registerSynchronousUnary(Orchestrator_Testing_V1_EchoMethods.get, echo.getImmediately) }
        // Last, so it lists every service registered above.
        ReflectionService.register(into: &router)

        var listeners = [ServerConfiguration.Listener(host: host, port: port)]
        if let tlsPort, let cert, let key {
            listeners.append(.init(host: host, port: tlsPort, tls: .init(
                certificateChainPath: cert, privateKeyPath: key, clientCAPath: clientCa,
                clientAuthentication: ServerConfiguration.TLS.ClientAuthentication(rawValue: clientAuth) ?? .none)))
        }
        var interceptors: [any ServerInterceptor] = [PeerCertificateEchoInterceptor()]
        if rateLimitRps > 0 {
            interceptors.append(RateLimitInterceptor(buckets: TokenBucketTable(rate: rateLimitRps, burst: rateLimitBurst)))
        }
        var configuration = ServerConfiguration(listeners: listeners, router: router, interceptors: interceptors)
        configuration.maxConnectionsPerClient = maxConnectionsPerClient
        if let maxHeaderListSize { configuration.maxHeaderListSize = maxHeaderListSize }
        configuration.maxReceiveMessageSize = maxReceiveSize
        configuration.maxConnectionReceiveBuffer = maxConnectionReceiveBuffer
        configuration.maxServerReceiveBuffer = maxServerReceiveBuffer
        if let ioThreads { configuration.ioThreads = ioThreads }
        if let keepaliveIntervalMs {
            configuration.keepaliveInterval = keepaliveIntervalMs > 0 ? .milliseconds(keepaliveIntervalMs) : nil
        }
        if let keepaliveTimeoutMs { configuration.keepaliveTimeout = .milliseconds(keepaliveTimeoutMs) }
        configuration.logger = Logger(label: "interop-test-server")

        let server = GRPCServer(configuration: configuration)
        server.onShutdownStarted { health.shutdown() }
        try await server.start()
        await server.installSignalHandlers()
        let logger = Logger(label: "interop-test-server")
        await server.onHangup {
            do {
                let count = try server.reloadTLS()
                logger.notice("TLS certificates reloaded", metadata: ["listeners": "\(count)"])
            } catch {
                logger.error("TLS reload failed; keeping the previous certificates", metadata: ["error": "\(error)"])
            }
        }
        for address in server.boundAddresses {
            announce("listening on \(address.host):\(address.port) (\(address.isSecure ? "tls" : "h2c"))\n")
        }
        await server.waitUntilShutdown()
    }

    /// Writes straight to fd 1: stdout is block-buffered when piped, and the tests wait for this line.
    private func announce(_ line: String) {
        var bytes = Array(line.utf8)
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeMutableBytes { write(1, $0.baseAddress! + offset, $0.count - offset) }
            if written <= 0 { return }
            offset += written
        }
    }
}

/// `--echo-get`: how Echo/Get's handler runs (for side-by-side measurements of the paths).
enum EchoGetExecution: String, ExpressibleByArgument, CaseIterable {
    case inline
    case ioThread = "io-thread"
    case pool
}
