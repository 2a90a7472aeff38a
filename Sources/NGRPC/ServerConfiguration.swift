public import Logging

/// Everything `GRPCServer` needs: where to listen, how many threads, limits, keepalive and
/// hardening policy, interceptors and routes. Every field has a default; see docs/RPC.md for why.
public struct ServerConfiguration: Sendable {
    /// PEM files for a TLS listener (ALPN `h2` only, TLS 1.2+). `GRPCServer.reloadTLS()` reads
    /// them again (SIGHUP in orchestratord), so a renewed certificate needs no restart.
    public struct TLS: Sendable, Hashable {
        public var certificateChainPath: String
        public var privateKeyPath: String
        /// PEM file of the CAs whose client certificates are accepted (mutual TLS); needed unless
        /// `clientAuthentication` is `.none`.
        public var clientCAPath: String?
        public var clientAuthentication: ClientAuthentication

        /// Whether clients must present a certificate signed by `clientCAPath`.
        public enum ClientAuthentication: String, Sendable, Hashable, CaseIterable {
            /// No certificate is requested.
            case none
            /// A certificate is requested; a client without one is accepted, one with a certificate
            /// that does not verify is refused in the handshake.
            case optional
            /// The handshake fails without a certificate that verifies.
            case require
        }

        public init(
            certificateChainPath: String, privateKeyPath: String, clientCAPath: String? = nil,
            clientAuthentication: ClientAuthentication = .none
        ) {
            self.certificateChainPath = certificateChainPath
            self.privateKeyPath = privateKeyPath
            self.clientCAPath = clientCAPath
            self.clientAuthentication = clientAuthentication
        }
    }

    /// One listening socket: cleartext HTTP/2 with prior knowledge (h2c) unless `tls` is set.
    public struct Listener: Sendable, Hashable {
        public var host: String
        /// 0 picks a free port; `GRPCServer.boundAddresses` reports it.
        public var port: Int
        public var tls: TLS?

        public init(host: String = "127.0.0.1", port: Int = 50051, tls: TLS? = nil) {
            self.host = host
            self.port = port
            self.tls = tls
        }
    }

    public var listeners: [Listener]
    public var router: RPCRouter
    /// Run around every handler, first element outermost.
    public var interceptors: [any ServerInterceptor] = []
    /// I/O threads, each with its own event loop; connections are spread round-robin.
    public var ioThreads: Int = EventLoopGroup.coreCount

    /// Largest request message accepted (after decompression); larger → RESOURCE_EXHAUSTED.
    public var maxReceiveMessageSize: Int = 4 * 1024 * 1024
    /// Bytes of partly received request messages one connection may hold, counted by their
    /// declared lengths. A stream whose message does not fit waits (its window is not returned)
    /// until earlier messages complete. nil: 4 × `maxReceiveMessageSize`; never below it.
    public var maxConnectionReceiveBuffer: Int? = nil
    /// Bytes buffered in partly received request messages across all connections (what has
    /// arrived, not declared lengths); a read that would pass it ends its call
    /// RESOURCE_EXHAUSTED. nil: 256 × `maxReceiveMessageSize`; never below the per-connection one.
    public var maxServerReceiveBuffer: Int? = nil
    /// Largest response message a handler may send; larger → the call ends RESOURCE_EXHAUSTED.
    public var maxSendMessageSize: Int = Int(Int32.max)
    /// SETTINGS_MAX_CONCURRENT_STREAMS sent in the first SETTINGS frame.
    public var maxConcurrentStreams: Int = 100
    /// SETTINGS_MAX_HEADER_LIST_SIZE, enforced locally (name + value + 32 per field).
    public var maxHeaderListSize: Int = 16 * 1024
    /// Most header fields accepted in one request header block.
    public var maxHeaderFieldCount: Int = 128
    /// Most simultaneous connections from one client IP address (all listeners together); more
    /// are closed right after accept, with a log line. nil: no limit.
    public var maxConnectionsPerClient: Int? = nil
    /// Most connections open at once, all listeners and clients together; more are closed right
    /// after accept (logged at most every 10 s, with their number). Each holds a file descriptor,
    /// and a process out of them fails in places that cannot recover (libdispatch traps), so keep
    /// this below the descriptor limit with room for the rest. nil: no limit.
    public var maxConnections: Int? = nil
    /// SETTINGS_INITIAL_WINDOW_SIZE: how much one stream may send before we return window.
    public var initialStreamWindowSize: Int = 1024 * 1024
    /// Connection-level receive window.
    public var connectionWindowSize: Int = 16 * 1024 * 1024
    /// Bytes of received messages queued for one handler before the stream's window is held back.
    public var inboundBufferLimit: Int = 256 * 1024
    /// Bytes of framed responses queued per stream before `send` suspends.
    public var outboundBufferLimit: Int = 256 * 1024
    /// Above this many bytes pending in a connection's socket buffer the loop stops producing
    /// frames and reading requests until it drains.
    public var connectionOutputHighWatermark: Int = 1024 * 1024

    /// Send a PING this often on an otherwise idle-looking connection; nil disables keepalive.
    public var keepaliveInterval: Duration? = .seconds(60)
    /// Close the connection when a keepalive PING is not acknowledged within this time.
    public var keepaliveTimeout: Duration = .seconds(20)
    /// Client PINGs closer together than this, with no data sent in between, are strikes. Half of
    /// the common 10 s client keepalive, so such clients never strike even with timer jitter,
    /// while floods still do. (grpc-go/java servers use 5 minutes, which trips many real clients.)
    public var minPingIntervalWithoutData: Duration = .seconds(5)
    /// Strikes tolerated before GOAWAY ENHANCE_YOUR_CALM "too_many_pings".
    public var maxPingStrikes: Int = 2
    /// A connection that has not completed the TLS handshake and HTTP/2 preface by then is closed.
    public var handshakeTimeout: Duration = .seconds(10)
    /// A connection with no open streams for this long is closed with GOAWAY; nil never.
    public var connectionIdleTimeout: Duration? = nil

    /// nghttp2's Rapid Reset limit on RST_STREAMs the client sends: burst and refill per second.
    public var clientResetBurst: Int = 1000
    public var clientResetRatePerSecond: Int = 33
    /// Budget for RST_STREAMs *we* send because of client behaviour ("MadeYouReset"): burst and
    /// refill per second; past it the connection gets GOAWAY ENHANCE_YOUR_CALM. Well-behaved
    /// clients cause none (the server's own resets are NO_ERROR, which is not counted), and the
    /// burst stays below `maxConcurrentStreams` so the budget trips before a flood of
    /// half-reset streams can trip nghttp2's stream-count check (a PROTOCOL_ERROR instead).
    public var serverResetBurst: Int = 50
    public var serverResetRatePerSecond: Int = 10
    /// CONTINUATION frames accepted per header block.
    public var maxContinuations: Int = 8
    /// SETTINGS entries accepted per frame.
    public var maxSettings: Int = 32
    /// Queued outbound ACKs (SETTINGS/PING) before nghttp2 drops the connection.
    public var maxOutboundAck: Int = 1000

    /// How long `shutdown()` lets in-flight RPCs finish before cancelling them.
    public var shutdownGracePeriod: Duration = .seconds(10)
    /// Compress responses with gzip when the client's grpc-accept-encoding allows it.
    public var compressResponses: Bool = false

    public var logger: Logger = Logger(label: "ngrpc")

    /// Where handlers run.
    public enum HandlerExecution: Sendable, Hashable {
        /// On Swift's global concurrency pool (default): handlers may compute freely; each call
        /// costs a hop to a pool thread and back.
        case concurrencyPool
        /// On the connection's I/O thread, through a task executor preference: no thread hops, so
        /// fastest for short handlers, but a handler that blocks or computes for long stalls every
        /// connection on that loop. For echo-like services and benchmarks.
        case ioThread
    }

    public var handlerExecution: HandlerExecution = .concurrencyPool

    public init(listeners: [Listener] = [Listener()], router: RPCRouter, interceptors: [any ServerInterceptor] = []) {
        self.listeners = listeners
        self.router = router
        self.interceptors = interceptors
    }
}
