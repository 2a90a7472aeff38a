import Synchronization

/// A client channel: one HTTP/2 connection (h2c or TLS) to `host:port`, connected lazily on the
/// first call and again after it fails or the server sends GOAWAY, driven by one loop thread
/// the channel owns.
///
/// Thread-safe: `makeCall` hops to the loop; the current connection lives in `LoopState`, which
/// only the loop thread touches.
public final class GRPCChannel: RPCChannel {
    public let configuration: ClientConfiguration
    private let group: EventLoopGroup
    private let loop: EventLoop
    private let tls: TLSContext?
    private let loopState = LoopState()
    private let closed = Atomic<Bool>(false)

    /// Loop thread only.
    private final class LoopState: @unchecked Sendable {
        var connection: ClientConnection?
        var draining: [ObjectIdentifier: ClientConnection] = [:]
        /// Starts as configured; doubled each time a server answers GOAWAY "too_many_pings", as
        /// gRPC's own clients do, so an over-eager setting settles at what the server allows
        /// instead of losing every connection to the same GOAWAY.
        var keepaliveInterval: Duration?
    }

    public struct SetupError: Error, CustomStringConvertible {
        public var description: String
    }

    public init(configuration: ClientConfiguration) throws {
        self.configuration = configuration
        if let tls = configuration.tls {
            var certificate: (chain: String, key: String)?
            switch (tls.certificateChainPath, tls.privateKeyPath) {
            case (let chain?, let key?): certificate = (chain, key)
            case (nil, nil): certificate = nil
            default: throw SetupError(description: "a client certificate needs both a chain file and a key file")
            }
            do {
                self.tls = try TLSContext(clientCAFile: tls.caFile, verify: tls.verifyCertificate, certificate: certificate)
            } catch {
                throw SetupError(description: "\(error)")
            }
        } else {
            self.tls = nil
        }
        group = EventLoopGroup(threads: 1)
        loop = group.loops[0]
        loopState.keepaliveInterval = configuration.keepaliveInterval
    }

    public convenience init(host: String, port: Int, tls: ClientConfiguration.TLS? = nil) throws {
        try self.init(configuration: ClientConfiguration(host: host, port: port, tls: tls))
    }

    deinit {
        if !closed.load(ordering: .relaxed) { group.shutdown() }
    }

    public func makeCall(_ method: MethodDescriptor, options: CallOptions) async throws -> any RawClientCall {
        guard !closed.load(ordering: .relaxed) else { throw RPCStatus(.unavailable, "channel is closed") }
        let stream = ClientStream(
            method: method, options: options, loop: loop, inboundLimit: configuration.inboundBufferLimit,
            outboundLimit: configuration.outboundBufferLimit)
        loop.execute { [self] in
            connectionOnLoop().start(stream, authority: authority, scheme: tls == nil ? "http" : "https")
        }
        return ClientCallHandle(stream: stream)
    }

    private var authority: String {
        configuration.host.contains(":") ? "[\(configuration.host)]:\(configuration.port)" : "\(configuration.host):\(configuration.port)"
    }

    /// Loop: the usable connection, connecting a new one when needed.
    private func connectionOnLoop() -> ClientConnection {
        if let connection = loopState.connection, connection.isUsable { return connection }
        if let old = loopState.connection, !old.isClosed {
            loopState.draining[ObjectIdentifier(old)] = old
        }
        let state = loopState
        var connectionConfiguration = configuration
        connectionConfiguration.keepaliveInterval = state.keepaliveInterval
        let connection = ClientConnection(
            loop: loop, configuration: connectionConfiguration, tls: tls,
            onTooManyPings: {
                if let interval = state.keepaliveInterval { state.keepaliveInterval = min(interval * 2, .seconds(3600)) }
            }
        ) { closed in
            if state.connection === closed { state.connection = nil }
            state.draining[ObjectIdentifier(closed)] = nil
        }
        loopState.connection = connection.isClosed ? nil : connection
        return connection
    }

    /// The keepalive interval new connections use (tests).
    func currentKeepaliveInterval() async -> Duration? {
        let state = loopState
        return await withCheckedContinuation { continuation in
            loop.execute { continuation.resume(returning: state.keepaliveInterval) }
        }
    }

    /// Closes the connection (open calls fail with UNAVAILABLE) and stops the loop thread.
    public func close() async {
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        let state = loopState
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            loop.execute {
                state.connection?.close()
                for connection in state.draining.values { connection.close() }
                continuation.resume()
            }
        }
        group.shutdown()
    }
}
