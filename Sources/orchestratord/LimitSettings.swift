import NGRPC
import OrchestratorDomain

/// Typed settings of mutual TLS and of the server's limits, from `ResolvedSettings`.
struct LimitSettings: Sendable {
    var tlsClientCAFile: String?
    var tlsClientAuthentication: ServerConfiguration.TLS.ClientAuthentication
    var maxMetadataSize: Int
    /// nil: no limit.
    var maxConnectionsPerClient: Int?
    /// As set (0: no limit); nil: unset, derived from the file descriptor limit at start
    /// (`FileDescriptorLimit.maxConnections`).
    var maxConnectionsSetting: Int?
    /// nil: rate limiting off.
    var rateLimit: (rate: Double, burst: Int)?
    var validation: ValidationLimits
    var maxStringLength: Int
    var maxAssignmentSize: Int
    /// Receive budgets for partly received messages (docs/SECURITY.md, "Limits"); nil: the
    /// transport's defaults, 4 × and 256 × max-receive-message-size.
    var maxConnectionReceiveBuffer: Int?
    var maxServerReceiveBuffer: Int?

    init(_ settings: ResolvedSettings) throws {
        tlsClientCAFile = settings.value("tls-client-ca-file").flatMap { $0.isEmpty ? nil : $0 }
        let mode = settings.value("tls-client-auth") ?? "none"
        guard let parsed = ServerConfiguration.TLS.ClientAuthentication(rawValue: mode) else {
            throw SettingsError(description: "tls-client-auth \"\(mode)\" is not one of none, optional, require")
        }
        tlsClientAuthentication = parsed
        if parsed != .none, tlsClientCAFile == nil {
            throw SettingsError(description: "tls-client-auth \(mode) needs tls-client-ca-file")
        }
        if parsed != .none, (settings.value("grpc-tls-address") ?? "").isEmpty {
            // Client certificates exist only on the TLS listener: without one the setting would be silently void.
            throw SettingsError(description: "tls-client-auth \(mode) needs a TLS listener (grpc-tls-address)")
        }
        maxMetadataSize = try Self.integer(settings, "max-metadata-size", in: 1024...(1 << 20))
        let connections = try Self.integer(settings, "max-connections-per-client", in: 0...1_000_000)
        maxConnectionsPerClient = connections == 0 ? nil : connections
        maxConnectionsSetting = try settings.value("max-connections").map {
            try ServerSettings.integer($0, "max-connections", in: 0...10_000_000)
        }
        let rateText = settings.value("rate-limit-rps") ?? "0"
        guard let rate = Double(rateText), rate.isFinite, rate >= 0, rate <= 1_000_000 else {
            throw SettingsError(description: "rate-limit-rps \"\(rateText)\" must be a number in 0...1000000 (0: off)")
        }
        let burst = try Self.integer(settings, "rate-limit-burst", in: 1...1_000_000)
        rateLimit = rate > 0 ? (rate, burst) : nil
        var validation = ValidationLimits.default
        validation.maxTasks = try Self.integer(settings, "max-dag-tasks", in: 1...10_000_000)
        validation.maxEdges = try Self.integer(settings, "max-dag-edges", in: 0...100_000_000)
        validation.maxDepth = try Self.integer(settings, "max-dag-depth", in: 1...10_000_000)
        self.validation = validation
        maxStringLength = try Self.integer(settings, "max-string-length", in: 128...(64 << 20))
        maxAssignmentSize = try Self.integer(settings, "max-assignment-size", in: 64 * 1024...(1 << 30))
        maxConnectionReceiveBuffer = try settings.value("max-connection-receive-buffer").map {
            try ServerSettings.integer($0, "max-connection-receive-buffer", in: 1024...(1 << 40))
        }
        maxServerReceiveBuffer = try settings.value("max-server-receive-buffer").map {
            try ServerSettings.integer($0, "max-server-receive-buffer", in: 1024...(1 << 40))
        }
    }

    /// The receive budgets against the largest message: a budget below it could never let such a
    /// message in (the call would wait for ever), so that is a setting error, not a silent raise.
    func checkReceiveBuffers(maxReceiveMessageSize largest: Int) throws {
        let connection = maxConnectionReceiveBuffer ?? 4 * largest
        if connection < largest {
            throw SettingsError(description: "max-connection-receive-buffer (\(connection)) must be at least max-receive-message-size (\(largest))")
        }
        if let server = maxServerReceiveBuffer, server < connection {
            throw SettingsError(description: "max-server-receive-buffer (\(server)) must be at least max-connection-receive-buffer (\(connection))")
        }
    }

    private static func integer(_ settings: ResolvedSettings, _ key: String, in range: ClosedRange<Int>) throws -> Int {
        try ServerSettings.integer(settings.value(key) ?? "", key, in: range)
    }
}
