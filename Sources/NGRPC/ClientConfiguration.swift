/// Where and how `GRPCChannel` connects.
public struct ClientConfiguration: Sendable {
    /// TLS for the channel (ALPN `h2`).
    public struct TLS: Sendable, Hashable {
        /// PEM file of CAs to trust; nil uses the system store.
        public var caFile: String?
        /// False skips certificate verification (tests only).
        public var verifyCertificate: Bool
        /// SNI and the name to verify; nil uses `host`.
        public var serverName: String?
        /// PEM certificate chain and key presented to servers that ask for a client certificate
        /// (mutual TLS); both or neither.
        public var certificateChainPath: String?
        public var privateKeyPath: String?

        public init(
            caFile: String? = nil, verifyCertificate: Bool = true, serverName: String? = nil,
            certificateChainPath: String? = nil, privateKeyPath: String? = nil
        ) {
            self.caFile = caFile
            self.verifyCertificate = verifyCertificate
            self.serverName = serverName
            self.certificateChainPath = certificateChainPath
            self.privateKeyPath = privateKeyPath
        }
    }

    public var host: String
    public var port: Int
    public var tls: TLS?
    /// Per-stream receive window (SETTINGS_INITIAL_WINDOW_SIZE).
    public var initialStreamWindowSize: Int = 1024 * 1024
    /// Connection-level receive window.
    public var connectionWindowSize: Int = 16 * 1024 * 1024
    /// Largest response header list accepted.
    public var maxHeaderListSize: Int = 16 * 1024
    /// Bytes of unread responses buffered per call before the stream's window is held back.
    public var inboundBufferLimit: Int = 256 * 1024
    /// Bytes of queued requests per call before `send` suspends.
    public var outboundBufferLimit: Int = 256 * 1024

    /// Send a PING this often to find a dead server or a dropped NAT mapping; nil (the gRPC client
    /// default) sends none. Servers punish PINGs closer than their minimum (ours: 5 s).
    public var keepaliveInterval: Duration? = nil
    /// Close the connection (open calls fail UNAVAILABLE) when a keepalive PING is not answered in time.
    public var keepaliveTimeout: Duration = .seconds(20)

    /// Extra time the local deadline timer waits beyond `grpc-timeout`. Zero in production; tests
    /// raise it to see the server's own deadline handling instead of racing it.
    var deadlineTimerSlack: Duration = .zero

    public init(host: String, port: Int, tls: TLS? = nil) {
        self.host = host
        self.port = port
        self.tls = tls
    }
}
