/// Settings of mutual TLS and of the server's limits (docs/SECURITY.md, "TLS" and "Limits").
extension SettingsCatalog {
    static let tlsAndLimits: [SettingDefinition] = [
        SettingDefinition("tls-client-ca-file", default: nil,
                          help: "PEM file of the CAs whose client certificates the TLS listener accepts (mutual TLS)"),
        SettingDefinition("tls-client-auth", default: "none",
                          help: "client certificates on the TLS listener: none, optional (verified when sent) or require"),
        SettingDefinition("max-metadata-size", default: String(16 * 1024),
                          help: "largest request metadata (HTTP/2 header list: name + value + 32 per entry) in bytes; larger calls get RESOURCE_EXHAUSTED"),
        SettingDefinition("max-connections-per-client", default: "1000",
                          help: "most simultaneous connections from one client IP address; more are closed at accept; 0: no limit"),
        SettingDefinition("max-connections", default: nil, whenUnset: "the file descriptor limit less a reserve",
                          help: "most gRPC connections open at once, all clients together; more are closed at accept; 0: no limit. Unset: what the file descriptor limit (raised at start to its hard limit) allows after 256 + database-pool-size + 64 descriptors kept for the rest; a larger value is refused at start"),
        SettingDefinition("rate-limit-rps", default: "0",
                          help: "calls per second per caller (authenticated subject and tenant, else IP address), token bucket; 0: off"),
        SettingDefinition("rate-limit-burst", default: "100", help: "calls a caller may make back to back (token bucket size)"),
        SettingDefinition("max-dag-tasks", default: "100000", help: "most tasks in one workflow graph"),
        SettingDefinition("max-dag-edges", default: "1000000", help: "most dependencies in one workflow graph"),
        SettingDefinition("max-dag-depth", default: "10000", help: "most tasks on one dependency chain of a workflow graph"),
        SettingDefinition("max-string-length", default: "65536",
                          help: "longest string field (UTF-8 bytes, 128 to 64 MiB) in any request, map keys and values included"),
        SettingDefinition("max-connection-receive-buffer", default: nil, whenUnset: "4 × max-receive-message-size",
                          help: "bytes of partly received request messages one connection may hold (declared lengths); a message that does not fit waits for earlier ones (flow control); at least max-receive-message-size"),
        SettingDefinition("max-server-receive-buffer", default: nil, whenUnset: "256 × max-receive-message-size",
                          help: "bytes buffered in partly received request messages across all connections; a read past it refuses its message RESOURCE_EXHAUSTED; at least max-connection-receive-buffer"),
        SettingDefinition("max-assignment-size", default: String(4 * 1024 * 1024),
                          help: "largest assignment sent to an executor, bytes (upstream results, payload and inputs included); a task whose assignment would be larger fails, not retryable, code assignment_too_large; gRPC clients accept 4 MiB by default"),
    ]
}
