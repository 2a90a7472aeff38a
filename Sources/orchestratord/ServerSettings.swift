import Foundation
import Logging
import OrchestratorObservability

/// A setting that could not be used, with a message that says how to fix it.
struct SettingsError: Error, CustomStringConvertible {
    let description: String
}

/// Typed, validated settings of the server, built from `ResolvedSettings`.
struct ServerSettings: Sendable {
    var grpcAddress: HostPort?
    var grpcTLSAddress: HostPort?
    var tlsCertFile: String?
    var tlsKeyFile: String?
    var ioThreads: Int?
    var maxReceiveMessageSize: Int
    /// Largest response message; unset: the larger of 64 MiB and 2 × `maxReceiveMessageSize`
    /// (answers carry what requests stored, and PlanWorkflow answers a graph whole).
    var maxSendMessageSize: Int
    var maxConcurrentStreams: Int
    var shutdownGrace: Duration
    var logLevel: Logger.Level
    var databaseURL: String?
    var dataDirectory: String
    var embeddedPort: Int
    var databasePoolSize: Int
    var catalogFile: String?
    var leaseTTL: Duration
    var heartbeatInterval: Duration
    /// How long finished workflows are kept; nil: for ever.
    var retention: Duration?
    var directDispatch: Bool
    var observability: ObservabilitySettings
    var limits: LimitSettings
    /// The file descriptor limits at start, and the gRPC connection bound derived from them (nil: none).
    var fileDescriptors: FileDescriptorLimit.Limits
    var maxConnections: Int?
    var auth: AuthSettings
    var tracing: TracingSettings

    init(_ settings: ResolvedSettings, fileDescriptors: FileDescriptorLimit.Limits) throws {
        // `none` (or `off`) turns the cleartext listener off from any source: an empty value does
        // too, but an empty environment variable counts as unset, as for every setting, so
        // `ORCHESTRATOR_GRPC_ADDRESS=` kept the default listener open (found by black-box testing).
        let grpcText = settings.value("grpc-address")?.lowercased()
        grpcAddress = grpcText == "none" || grpcText == "off" ? nil : try Self.address(settings, "grpc-address")
        grpcTLSAddress = try Self.address(settings, "grpc-tls-address")
        tlsCertFile = settings.value("tls-cert-file").flatMap { $0.isEmpty ? nil : $0 }
        tlsKeyFile = settings.value("tls-key-file").flatMap { $0.isEmpty ? nil : $0 }
        if grpcTLSAddress != nil, tlsCertFile == nil || tlsKeyFile == nil {
            throw SettingsError(description: "grpc-tls-address needs both tls-cert-file and tls-key-file")
        }
        if grpcTLSAddress == nil, tlsCertFile != nil || tlsKeyFile != nil {
            // As with jwt-key-file without auth: a file given for nothing was never checked, and the
            // operator believed TLS was on.
            throw SettingsError(description: "tls-cert-file/tls-key-file are set but there is no TLS listener; add --grpc-tls-address (or unset them)")
        }
        if grpcAddress == nil, grpcTLSAddress == nil {
            throw SettingsError(description: "no gRPC listener: set grpc-address or grpc-tls-address")
        }
        ioThreads = try settings.value("io-threads").map { try Self.integer($0, "io-threads", in: 1...256) }
        maxReceiveMessageSize = try Self.integer(settings.value("max-receive-message-size") ?? "", "max-receive-message-size", in: 1024...(1 << 30))
        maxSendMessageSize = try settings.value("max-send-message-size").map {
            try Self.integer($0, "max-send-message-size", in: 1024...Int(Int32.max))
        } ?? min(max(64 << 20, 2 * maxReceiveMessageSize), Int(Int32.max))
        maxConcurrentStreams = try Self.integer(settings.value("max-concurrent-streams") ?? "", "max-concurrent-streams", in: 1...10_000)
        shutdownGrace = .seconds(try Self.integer(settings.value("shutdown-grace") ?? "", "shutdown-grace", in: 0...3600))
        let levelText = settings.value("log-level") ?? "info"
        guard let level = Logger.Level(rawValue: levelText.lowercased()) else {
            throw SettingsError(description: "log-level \"\(levelText)\" is not one of trace, debug, info, notice, warning, error, critical")
        }
        logLevel = level
        databaseURL = settings.value("database-url").flatMap { $0.isEmpty ? nil : $0 }
        dataDirectory = settings.value("data-dir") ?? ".orchestrator/pgdata"
        embeddedPort = try Self.integer(settings.value("embedded-port") ?? "", "embedded-port", in: 1...65535)
        databasePoolSize = try Self.integer(settings.value("database-pool-size") ?? "", "database-pool-size", in: 1...500)
        catalogFile = settings.value("catalog-file").flatMap { $0.isEmpty ? nil : $0 }
        if let catalogFile, !FileManager.default.isReadableFile(atPath: catalogFile) {
            // A setting the server cannot honour (exit 64, named), like the TLS files; its content is
            // checked when the planner loads it.
            throw SettingsError(description: "catalog-file \"\(catalogFile)\" cannot be read")
        }
        leaseTTL = .seconds(try Self.integer(settings.value("lease-ttl") ?? "", "lease-ttl", in: 1...86_400))
        heartbeatInterval = .seconds(try Self.integer(settings.value("heartbeat-interval") ?? "", "heartbeat-interval", in: 1...3600))
        retention = try RetentionSetting.parse(settings.value("retention") ?? "off")
        switch (settings.value("direct-dispatch") ?? "on").lowercased() {
        case "on", "true", "1": directDispatch = true
        case "off", "false", "0": directDispatch = false
        case let other: throw SettingsError(description: "direct-dispatch \"\(other)\" is not on or off (also true/false, 1/0)")
        }
        observability = try ObservabilitySettings(settings)
        let listeners = [
            ("grpc-address", grpcAddress), ("grpc-tls-address", grpcTLSAddress), ("admin-address", observability.adminAddress),
        ]
        if let (one, other, address) = ListenerAddressClash.first(in: listeners) {
            throw SettingsError(description: "\(one) and \(other) both listen on \(address) (port \(address.port)): give each its own port")
        }
        limits = try LimitSettings(settings)
        self.fileDescriptors = fileDescriptors
        maxConnections = try FileDescriptorLimit.maxConnections(
            setting: limits.maxConnectionsSetting, soft: fileDescriptors.soft,
            reserve: FileDescriptorLimit.reserve(databasePoolSize: databasePoolSize, adminConnections: AdminHTTPServer.maxConnections))
        // Under a soft limit of 1,024 the server takes 688 connections, fewer than the default
        // 1,000 per client: one client could hold them all (found by black-box testing). Unless
        // set, a client gets at most half.
        let perClientSource = settings.entries.first { $0.definition.key == "max-connections-per-client" }?.source
        if perClientSource == .default, let total = maxConnections, let perClient = limits.maxConnectionsPerClient, perClient > total / 2 {
            limits.maxConnectionsPerClient = max(1, total / 2)
        }
        try limits.checkReceiveBuffers(maxReceiveMessageSize: maxReceiveMessageSize)
        if maxSendMessageSize < limits.maxAssignmentSize {
            // An assignment is a response message of the Lease stream: one the budget let through
            // would then end the executor's whole stream.
            throw SettingsError(description: "max-send-message-size (\(maxSendMessageSize)) must be at least max-assignment-size (\(limits.maxAssignmentSize))")
        }
        auth = try AuthSettings(settings)
        tracing = try TracingSettings(settings)
        if heartbeatInterval >= leaseTTL {
            throw SettingsError(description: "heartbeat-interval must be shorter than lease-ttl (executors would lose every lease)")
        }
    }

    static func address(_ settings: ResolvedSettings, _ key: String) throws -> HostPort? {
        guard let text = settings.value(key), !text.isEmpty else { return nil }
        guard let parsed = HostPort(text) else {
            throw SettingsError(description: "\(key) \"\(text)\" is not host:port (e.g. 127.0.0.1:50051 or [::1]:50051)")
        }
        return parsed
    }

    static func integer(_ text: String, _ key: String, in range: ClosedRange<Int>) throws -> Int {
        guard let value = Int(text), range.contains(value) else {
            throw SettingsError(description: "\(key) \"\(text)\" must be an integer in \(range.lowerBound)...\(range.upperBound)")
        }
        return value
    }
}

/// `host:port`, with IPv6 hosts in brackets.
struct HostPort: Sendable, Hashable, CustomStringConvertible {
    var host: String
    var port: Int

    init?(_ text: String) {
        let hostPart: Substring
        let portPart: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else { return nil }
            hostPart = text[text.index(after: text.startIndex)..<close]
            portPart = text[text.index(close, offsetBy: 2)...]
        } else {
            guard let colon = text.lastIndex(of: ":") else { return nil }
            hostPart = text[..<colon]
            portPart = text[text.index(after: colon)...]
        }
        guard !hostPart.isEmpty, let port = Int(portPart), (0...65535).contains(port) else { return nil }
        host = String(hostPart)
        self.port = port
    }

    var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}
