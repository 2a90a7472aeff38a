internal import CNGHTTP2
import Logging
import Synchronization

/// State shared by every connection of one server: configuration, the interceptor-wrapped
/// routes, nghttp2 options, counters and one connection registry per loop.
///
/// Threading: immutable after `init` apart from the atomics; `registries[i]` is touched only on
/// loop `i`'s thread. Ownership: owns the `nghttp2_option` (freed in `deinit`); sessions copy it.
final class ServerCore: @unchecked Sendable {
    let configuration: ServerConfiguration
    /// A route with the server's interceptors applied. A class: a call takes one reference
    /// rather than copying its strings and closures.
    final class WrappedRoute: Sendable {
        let method: MethodDescriptor
        let handler: RawHandler
        /// Run the async handler's task on the connection's I/O thread.
        let onLoop: Bool
        /// Run inline on the I/O thread when the request ends (see `SynchronousHandlers.swift`).
        let synchronous: RawSynchronousHandler?

        init(method: MethodDescriptor, handler: @escaping RawHandler, onLoop: Bool, synchronous: RawSynchronousHandler?) {
            self.method = method
            self.handler = handler
            self.onLoop = onLoop
            self.synchronous = synchronous
        }
    }

    /// Interceptor-wrapped handlers by `:path`.
    let routes: [String: WrappedRoute]
    let logger: Logger
    let option: OpaquePointer
    let registries: [ConnectionRegistry]
    let activeCalls = Atomic<Int>(0)
    /// Asynchronous handlers (`ServerStream.startHandler`) that have not returned yet: a closed
    /// stream leaves `activeCalls` at once, its cancelled handler may still be running.
    let runningHandlers = Atomic<Int>(0)
    /// Totals since start, for `GRPCServer.statistics` (metrics): relaxed atomics, no locks.
    let connectionsAccepted = Atomic<Int>(0)
    let connectionsOpen = Atomic<Int>(0)
    /// Connections closed at accept: over `maxConnectionsPerClient`, over `maxConnections`, and
    /// while the listener paused because accept failed (out of file descriptors).
    let connectionsRefusedPerClient = Atomic<Int>(0)
    let connectionsRefusedInAll = Atomic<Int>(0)
    let callsStarted = Atomic<Int>(0)
    /// Bytes buffered in partly received request messages on all connections
    /// (`ServerConnection+ReceiveBudget.swift`), their limit, and messages refused over it.
    let partialRequestBytes = Atomic<Int>(0)
    let partialRequestsRefused = Atomic<Int>(0)
    let serverReceiveBudget: Int
    /// Each connection's share; never below the largest message, so a lone message always fits.
    let connectionReceiveBudget: Int
    /// TLS contexts by listener index; `GRPCServer.reloadTLS()` replaces what they hold.
    let tlsContexts: [Int: ReloadableTLSContext]
    /// Open connections per client IP and in all, for `maxConnectionsPerClient` and `maxConnections`.
    let admission: ConnectionAdmission

    init(configuration: ServerConfiguration, loopCount: Int, tlsContexts: [Int: ReloadableTLSContext]) {
        self.configuration = configuration
        let largest = configuration.maxReceiveMessageSize
        connectionReceiveBudget = max(configuration.maxConnectionReceiveBuffer ?? 4 * largest, largest)
        serverReceiveBudget = max(configuration.maxServerReceiveBuffer ?? 256 * largest, connectionReceiveBudget)
        var routes: [String: WrappedRoute] = [:]
        for (path, route) in configuration.router.routes {
            let execution = route.execution ?? configuration.handlerExecution
            routes[path] = WrappedRoute(
                method: route.method, handler: configuration.interceptors.wrapping(route.handler),
                onLoop: execution == .ioThread,
                synchronous: route.synchronous.flatMap { configuration.interceptors.wrappingSynchronously($0) })
        }
        self.routes = routes
        self.logger = configuration.logger
        self.tlsContexts = tlsContexts
        admission = ConnectionAdmission(limit: configuration.maxConnectionsPerClient, totalLimit: configuration.maxConnections)
        registries = (0..<loopCount).map { _ in ConnectionRegistry() }
        var option: OpaquePointer?
        nghttp2_option_new(&option)
        guard let option else { fatalError("nghttp2_option_new failed") }
        // Window updates are ours to send: a handler that is behind holds its stream's window.
        nghttp2_option_set_no_auto_window_update(option, 1)
        // Rapid Reset (CVE-2023-44487): limit RST_STREAMs a client may send.
        nghttp2_option_set_stream_reset_rate_limit(
            option, UInt64(configuration.clientResetBurst), UInt64(configuration.clientResetRatePerSecond))
        // CONTINUATION flood (CVE-2024-27316 family).
        nghttp2_option_set_max_continuations(option, configuration.maxContinuations)
        nghttp2_option_set_max_settings(option, configuration.maxSettings)
        nghttp2_option_set_max_outbound_ack(option, configuration.maxOutboundAck)
        // Closed streams are kept only for priority bookkeeping gRPC does not use.
        nghttp2_option_set_no_closed_streams(option, 1)
        self.option = option
    }

    deinit {
        nghttp2_option_del(option)
    }
}

/// The connections living on one loop. Loop thread only.
final class ConnectionRegistry: @unchecked Sendable {
    var connections: [ObjectIdentifier: ServerConnection] = [:]
}
