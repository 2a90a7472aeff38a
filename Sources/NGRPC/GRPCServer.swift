internal import CLibevent
internal import CNGRPCShims
import Logging
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A gRPC server on nghttp2 + libevent (+ OpenSSL for TLS listeners).
///
/// Lifecycle: `start()` binds every listener (port 0 picks a free port, see `boundAddresses`);
/// `shutdown()` sends GOAWAY, stops accepting, lets in-flight calls finish within the grace
/// period, cancels the rest and stops the I/O threads. Thread-safe: the mutable lifecycle state
/// is guarded by `state`'s mutex.
public final class GRPCServer: Sendable {
    public struct BoundAddress: Sendable, Hashable {
        public var host: String
        public var port: Int
        public var isSecure: Bool
    }

    public struct StartError: Error, CustomStringConvertible {
        public var description: String
    }

    private enum Phase { case idle, running, stopping, stopped }

    private struct State {
        var phase: Phase = .idle
        var group: EventLoopGroup?
        var core: ServerCore?
        var listeners: [Listener] = []
        var bound: [BoundAddress] = []
        var shutdownHooks: [@Sendable () -> Void] = []
        var stopWaiters: [CheckedContinuation<Void, Never>] = []
        var signalEvents: [SignalEvent] = []
        /// Set by a second shutdown signal: the drain stops waiting for in-flight calls.
        var graceCutShort = false
    }

    public let configuration: ServerConfiguration
    private let state = Mutex(State())

    public init(configuration: ServerConfiguration) {
        self.configuration = configuration
    }

    /// The listening addresses with their actual ports, after `start()`.
    public var boundAddresses: [BoundAddress] { state.withLock { $0.bound } }

    /// The first listener's port (convenient for tests binding port 0).
    public var port: Int? { boundAddresses.first?.port }

    /// Number of calls whose handler is running or whose stream is still open.
    public var activeCallCount: Int { state.withLock { $0.core }?.activeCalls.load(ordering: .relaxed) ?? 0 }

    /// Connection and call counters since `start()` (all zero before), for metrics.
    public struct Statistics: Sendable, Hashable {
        /// Connections accepted so far, and those open now.
        public var connectionsAccepted: Int
        public var connectionsOpen: Int
        /// Calls (HTTP/2 streams that reached a handler) started so far, and those running now.
        public var callsStarted: Int
        public var callsActive: Int
        /// Bytes buffered in partly received request messages now (receive budgets), and
        /// messages refused so far because the server-wide budget was full.
        public var partialRequestBytes: Int = 0
        public var partialRequestsRefused: Int = 0
        /// Connections closed right after accept so far: over the per-client limit, and over
        /// the server-wide one (`ServerConfiguration.maxConnections`).
        public var connectionsRefusedPerClient: Int = 0
        public var connectionsRefusedInAll: Int = 0
    }

    public var statistics: Statistics {
        guard let core = state.withLock({ $0.core }) else {
            return Statistics(connectionsAccepted: 0, connectionsOpen: 0, callsStarted: 0, callsActive: 0)
        }
        return Statistics(
            connectionsAccepted: core.connectionsAccepted.load(ordering: .relaxed),
            connectionsOpen: core.connectionsOpen.load(ordering: .relaxed),
            callsStarted: core.callsStarted.load(ordering: .relaxed), callsActive: core.activeCalls.load(ordering: .relaxed),
            partialRequestBytes: core.partialRequestBytes.load(ordering: .relaxed),
            partialRequestsRefused: core.partialRequestsRefused.load(ordering: .relaxed),
            connectionsRefusedPerClient: core.connectionsRefusedPerClient.load(ordering: .relaxed),
            connectionsRefusedInAll: core.connectionsRefusedInAll.load(ordering: .relaxed))
    }

    /// Whether the server is serving (started, not shutting down): readiness probes use it.
    public var isServing: Bool { state.withLock { $0.phase == .running } }

    /// Runs `hook` when shutdown begins (before GOAWAY), e.g. to turn health to NOT_SERVING.
    public func onShutdownStarted(_ hook: @escaping @Sendable () -> Void) {
        state.withLock { $0.shutdownHooks.append(hook) }
    }

    /// Binds the listeners and starts serving.
    public func start() async throws {
        var tlsContexts: [Int: ReloadableTLSContext] = [:]
        for (index, listener) in configuration.listeners.enumerated() {
            if let tls = listener.tls {
                do {
                    tlsContexts[index] = try ReloadableTLSContext(tls)
                } catch {
                    throw StartError(description: "TLS setup for listener \(index): \(error)")
                }
                warnIfNotValidNow(tlsContexts[index]?.context, listener: listener)
            }
        }
        let contexts = tlsContexts
        let group = EventLoopGroup(threads: configuration.ioThreads)
        let core = ServerCore(configuration: configuration, loopCount: group.loops.count, tlsContexts: tlsContexts)
        let acceptLoop = group.loops[0]
        let configuration = self.configuration
        let result: Result<([Listener], [BoundAddress]), StartError> = await withCheckedContinuation { continuation in
            acceptLoop.execute {
                var listeners: [Listener] = []
                var bound: [BoundAddress] = []
                for (index, spec) in configuration.listeners.enumerated() {
                    let listener = Listener(loop: acceptLoop, group: group, core: core, tls: contexts[index])
                    do {
                        try listener.bind(host: spec.host, port: spec.port)
                    } catch {
                        for open in listeners { open.close() }
                        continuation.resume(returning: .failure(StartError(description: "\(error)")))
                        return
                    }
                    listeners.append(listener)
                    bound.append(BoundAddress(host: spec.host, port: listener.port, isSecure: spec.tls != nil))
                }
                continuation.resume(returning: .success((listeners, bound)))
            }
        }
        switch result {
        case .failure(let error):
            group.shutdown()
            throw error
        case .success(let (listeners, bound)):
            state.withLock { state in
                state.phase = .running
                state.group = group
                state.core = core
                state.listeners = listeners
                state.bound = bound
            }
            for address in bound {
                configuration.logger.info(
                    "gRPC server listening",
                    metadata: ["address": "\(address.host):\(address.port)", "tls": "\(address.isSecure)",
                        "io_threads": "\(group.loops.count)"])
            }
        }
    }

    public struct TLSReloadError: Error, CustomStringConvertible {
        public var description: String
    }

    /// Reads every TLS listener's certificate, key and client CA files again and uses them for
    /// connections accepted from now on; open connections keep the context they started with.
    /// All or nothing: if any file fails to load, nothing changes and the error says which.
    /// Returns the number of TLS listeners reloaded.
    @discardableResult
    public func reloadTLS() throws(TLSReloadError) -> Int {
        guard let core = state.withLock({ $0.core }) else { throw TLSReloadError(description: "the server is not running") }
        var fresh: [(ReloadableTLSContext, TLSContext)] = []
        for (index, holder) in core.tlsContexts.sorted(by: { $0.key < $1.key }) {
            do {
                fresh.append((holder, try holder.load()))
            } catch {
                throw TLSReloadError(description: "TLS listener \(index): \(error)")
            }
        }
        for (holder, context) in fresh {
            holder.install(context)
            if let listener = configuration.listeners.first(where: { $0.tls == holder.settings }) {
                warnIfNotValidNow(context, listener: listener)
            }
        }
        return fresh.count
    }

    /// An expired (or not yet valid) certificate is served all the same, but every handshake with
    /// a verifying client fails, and clients say little about why: said once here, at load time.
    private func warnIfNotValidNow(_ context: TLSContext?, listener: ServerConfiguration.Listener) {
        guard let problem = context?.certificateValidityProblem else { return }
        configuration.logger.warning(
            "TLS certificate not valid now; clients that verify it will refuse every connection",
            metadata: [
                "address": "\(listener.host):\(listener.port)", "certificate": "\(listener.tls?.certificateChainPath ?? "")",
                "problem": "\(problem)",
            ])
    }

    /// Runs `action` on every SIGHUP (a libevent signal event on the first loop), e.g. to reload
    /// certificates with `reloadTLS()`. Call after `start()`; returns once the handler is installed.
    public func onHangup(_ action: @escaping @Sendable () -> Void) async {
        await installSignalEvents([SIGHUP]) { _ in action() }
    }

    /// Runs `action` on the first loop for each of `signals` received while the server runs.
    public func onSignals(_ signals: [Int32], _ action: @escaping @Sendable (Int32) -> Void) async {
        await installSignalEvents(signals, action)
    }

    /// Installs `action` for `signals` on the first loop, returning once libevent has them.
    private func installSignalEvents(_ signals: [Int32], _ action: @escaping @Sendable (Int32) -> Void) async {
        guard let group = state.withLock({ $0.group }) else { return }
        let loop = group.loops[0]
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            loop.execute { [self] in
                let events = signals.map { signal in SignalEvent(loop: loop, signal: signal) { action(signal) } }
                state.withLock { $0.signalEvents += events }
                continuation.resume()
            }
        }
    }

    /// How long handlers cancelled at the end of a shutdown may take to return.
    static let cancelledHandlerGrace: Duration = .seconds(1)

    /// Graceful shutdown: hooks, GOAWAY, stop accepting, drain within `grace` (default from the
    /// configuration), then cancel what is left, close every connection and stop the threads.
    public func shutdown(grace: Duration? = nil) async {
        let snapshot = state.withLock { state -> (EventLoopGroup, ServerCore, [Listener], [@Sendable () -> Void])? in
            guard state.phase == .running, let group = state.group, let core = state.core else { return nil }
            state.phase = .stopping
            return (group, core, state.listeners, state.shutdownHooks)
        }
        guard let (group, core, listeners, hooks) = snapshot else {
            await waitUntilShutdown()
            return
        }
        let logger = configuration.logger
        logger.info("gRPC server shutting down", metadata: ["active_calls": "\(core.activeCalls.load(ordering: .relaxed))"])
        for hook in hooks { hook() }
        await Self.onEveryLoop(group) { loop in
            if loop === group.loops[0] { for listener in listeners { listener.close() } }
            for connection in core.registries[loop.index].connections.values { connection.beginGracefulShutdown() }
        }
        let deadline = ContinuousClock.now + (grace ?? configuration.shutdownGracePeriod)
        while core.activeCalls.load(ordering: .relaxed) > 0 && ContinuousClock.now < deadline
            && !state.withLock({ $0.graceCutShort })
        {
            try? await Task.sleep(for: .milliseconds(10))
        }
        let left = core.activeCalls.load(ordering: .relaxed)
        if left > 0 {
            // Said as it is: a second signal cuts the grace period short.
            let why = state.withLock { $0.graceCutShort } ? "grace period cut short" : "grace period over"
            logger.info("\(why), cancelling calls", metadata: ["active_calls": "\(left)"])
        }
        // A draining connection closes itself once its GOAWAY and last responses are written.
        // Closing it before then would discard those bytes from its output buffer: a call that
        // just finished would reach its client as UNAVAILABLE, an idle client would see the
        // socket close without a GOAWAY. So wait for that too, briefly past the grace period.
        let drainEnded = state.withLock { $0.graceCutShort } ? ContinuousClock.now : deadline
        let flushDeadline = Swift.max(drainEnded, ContinuousClock.now + .milliseconds(500))
        while core.connectionsOpen.load(ordering: .relaxed) > 0 && ContinuousClock.now < flushDeadline {
            try? await Task.sleep(for: .milliseconds(5))
        }
        await Self.onEveryLoop(group) { loop in
            for connection in core.registries[loop.index].connections.values { connection.close() }
        }
        // Closing cancelled the calls still running; their handlers (and interceptors: the call's
        // log line, its metrics) get a moment to return. Without it the process exited first and a
        // call cut at the end of the grace period left no `rpc` line (found by black-box testing).
        let cancelDeadline = ContinuousClock.now + Self.cancelledHandlerGrace
        while core.runningHandlers.load(ordering: .relaxed) > 0 && ContinuousClock.now < cancelDeadline {
            try? await Task.sleep(for: .milliseconds(5))
        }
        let signalEvents = state.withLock { state in
            defer { state.signalEvents = [] }
            return state.signalEvents
        }
        await Self.onEveryLoop(group) { loop in
            if loop === group.loops[0] { for event in signalEvents { event.close() } }
        }
        group.shutdown()
        let waiters = state.withLock { state in
            state.phase = .stopped
            defer { state.stopWaiters = [] }
            return state.stopWaiters
        }
        for waiter in waiters { waiter.resume() }
        logger.info("gRPC server stopped")
    }

    /// Returns once the server has stopped (immediately if it never started).
    public func waitUntilShutdown() async {
        await withCheckedContinuation { continuation in
            let done = state.withLock { state -> Bool in
                if state.phase == .stopped || state.phase == .idle { return true }
                state.stopWaiters.append(continuation)
                return false
            }
            if done { continuation.resume() }
        }
    }

    /// Shuts down gracefully on SIGTERM or SIGINT (libevent signal events on the first loop); a
    /// second one cuts the grace period short (in-flight calls are cancelled at once), a third
    /// exits the process at once, as an operator pressing Ctrl-C again expects. Call after `start()`.
    /// The count is process-wide and goes on after the server stopped (`ShutdownSignals`): until
    /// the third, a signal no longer ends the process, which is expected to exit by itself.
    public func installSignalHandlers() async {
        guard let group = state.withLock({ $0.group }) else { return }
        let loop = group.loops[0]
        // Under libevent's handlers, so that libevent restores it (not the default disposition)
        // when they go with the loops and the process still has work to do.
        ShutdownSignals.installAfterStopHandler()
        // Returns only once libevent has installed the handlers: a SIGTERM that arrives earlier
        // would otherwise find the default disposition and kill the process without a drain.
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            loop.execute { [self] in
                var events: [SignalEvent] = []
                for signal in [SIGTERM, SIGINT] {
                    events.append(SignalEvent(loop: loop, signal: signal) { [self] in shutdownSignalReceived(signal) })
                }
                state.withLock { $0.signalEvents += events }
                continuation.resume()
            }
        }
    }

    private func shutdownSignalReceived(_ signal: Int32) {
        let count = ShutdownSignals.count()
        if count == 2 { state.withLock { $0.graceCutShort = true } }
        let logger = configuration.logger
        switch count {
        case 1:
            logger.info("signal received, shutting down", metadata: ["signal": "\(signal)"])
            Task { await self.shutdown() }
        case 2:
            logger.notice(
                "second signal received: cancelling in-flight calls now instead of waiting for the grace period (a third exits at once)",
                metadata: ["signal": "\(signal)"])
        default:
            logger.critical("third signal received: exiting at once", metadata: ["signal": "\(signal)"])
            // Conventional status of a process ended by a signal.
            _exit(128 + signal)
        }
    }

    private static func onEveryLoop(_ group: EventLoopGroup, _ body: @escaping @Sendable (EventLoop) -> Void) async {
        for loop in group.loops {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                loop.execute {
                    body(loop)
                    loop.runFlushes()
                    continuation.resume()
                }
            }
        }
    }
}
