import ArgumentParser

/// Command-line flags of the TLS and limit settings (`SettingsCatalog.tlsAndLimits`), grouped
/// so that `Orchestratord` needs one line for them.
struct TLSAndLimitFlags: ParsableArguments {
    @Option(name: .long, help: "PEM CA file for client certificates, mutual TLS (env ORCHESTRATOR_TLS_CLIENT_CA_FILE).")
    var tlsClientCaFile: String?

    @Option(name: .long, help: "Client certificates: none, optional or require (default none; env ORCHESTRATOR_TLS_CLIENT_AUTH).")
    var tlsClientAuth: String?

    @Option(name: .long, parsing: .unconditional, help: "Largest request metadata in bytes (default 16384; env ORCHESTRATOR_MAX_METADATA_SIZE).")
    var maxMetadataSize: String?

    @Option(name: .long, parsing: .unconditional, help: "Most connections per client IP, 0 no limit (default 1000; env ORCHESTRATOR_MAX_CONNECTIONS_PER_CLIENT).")
    var maxConnectionsPerClient: String?

    @Option(name: .long, parsing: .unconditional, help: "Most gRPC connections in all, 0 no limit (default: what the file descriptor limit allows; env ORCHESTRATOR_MAX_CONNECTIONS).")
    var maxConnections: String?

    @Option(name: .long, parsing: .unconditional, help: "Calls per second per caller, 0 off (default 0; env ORCHESTRATOR_RATE_LIMIT_RPS).")
    var rateLimitRps: String?

    @Option(name: .long, parsing: .unconditional, help: "Calls a caller may make back to back (default 100; env ORCHESTRATOR_RATE_LIMIT_BURST).")
    var rateLimitBurst: String?

    @Option(name: .long, parsing: .unconditional, help: "Most tasks per workflow graph (default 100000; env ORCHESTRATOR_MAX_DAG_TASKS).")
    var maxDagTasks: String?

    @Option(name: .long, parsing: .unconditional, help: "Most dependencies per workflow graph (default 1000000; env ORCHESTRATOR_MAX_DAG_EDGES).")
    var maxDagEdges: String?

    @Option(name: .long, parsing: .unconditional, help: "Most tasks on one dependency chain (default 10000; env ORCHESTRATOR_MAX_DAG_DEPTH).")
    var maxDagDepth: String?

    @Option(name: .long, parsing: .unconditional, help: "Longest string field in a request, bytes, 128 to 64 MiB (default 65536; env ORCHESTRATOR_MAX_STRING_LENGTH).")
    var maxStringLength: String?

    @Option(name: .long, parsing: .unconditional, help: "Bytes of partly received request messages one connection may hold; more wait (default 4 × max-receive-message-size; env ORCHESTRATOR_MAX_CONNECTION_RECEIVE_BUFFER).")
    var maxConnectionReceiveBuffer: String?

    @Option(name: .long, parsing: .unconditional, help: "Bytes buffered in partly received request messages across all connections; past it messages are refused (default 256 × max-receive-message-size; env ORCHESTRATOR_MAX_SERVER_RECEIVE_BUFFER).")
    var maxServerReceiveBuffer: String?

    @Option(name: .long, parsing: .unconditional, help: "Largest assignment sent to an executor, bytes (default 4194304; env ORCHESTRATOR_MAX_ASSIGNMENT_SIZE).")
    var maxAssignmentSize: String?

    /// Flag values by setting key; only the flags actually given.
    var values: [String: String] {
        let pairs: [(String, String?)] = [
            ("tls-client-ca-file", tlsClientCaFile), ("tls-client-auth", tlsClientAuth),
            ("max-metadata-size", maxMetadataSize), ("max-connections-per-client", maxConnectionsPerClient),
            ("max-connections", maxConnections),
            ("rate-limit-rps", rateLimitRps), ("rate-limit-burst", rateLimitBurst), ("max-dag-tasks", maxDagTasks),
            ("max-dag-edges", maxDagEdges), ("max-dag-depth", maxDagDepth), ("max-string-length", maxStringLength),
            ("max-assignment-size", maxAssignmentSize), ("max-connection-receive-buffer", maxConnectionReceiveBuffer),
            ("max-server-receive-buffer", maxServerReceiveBuffer),
        ]
        return Dictionary(uniqueKeysWithValues: pairs.compactMap { key, value in value.map { (key, $0) } })
    }
}
