/// Every setting orchestratord understands. Names are part of the product's interface
/// (docs, scripts and users rely on them): add new ones freely, never rename.
enum SettingsCatalog {
    static let all: [SettingDefinition] = [
        SettingDefinition("grpc-address", default: "127.0.0.1:50051",
                          help: "host:port of the cleartext gRPC listener (HTTP/2 with prior knowledge); none disables it (TLS only)"),
        SettingDefinition("grpc-tls-address", default: nil,
                          help: "host:port of the TLS gRPC listener (ALPN h2); needs tls-cert-file and tls-key-file"),
        SettingDefinition("tls-cert-file", default: nil, help: "PEM certificate chain for the TLS listener"),
        SettingDefinition("tls-key-file", default: nil, secret: true, help: "PEM private key for the TLS listener"),
        SettingDefinition("io-threads", default: nil, whenUnset: "one per core", help: "number of I/O threads; default: one per core"),
        SettingDefinition("max-receive-message-size", default: String(4 * 1024 * 1024),
                          help: "largest request message in bytes; larger ones get RESOURCE_EXHAUSTED"),
        SettingDefinition("max-send-message-size", default: nil, whenUnset: "the larger of 64 MiB and 2 × max-receive-message-size",
                          help: "largest response message in bytes; a larger answer ends its call RESOURCE_EXHAUSTED (GetWorkflow with include_tasks checks before reading the tasks); at least max-assignment-size"),
        SettingDefinition("max-concurrent-streams", default: "100", help: "HTTP/2 streams per connection"),
        SettingDefinition("shutdown-grace", default: "10", help: "seconds in-flight calls may take to finish after SIGTERM/SIGINT"),
        SettingDefinition("log-level", default: "info", help: "trace, debug, info, notice, warning, error or critical"),
        SettingDefinition("log-format", default: "json", help: "json (one object per line, for collectors) or text (readable lines)"),
        SettingDefinition("admin-address", default: "127.0.0.1:9090",
                          help: "host:port of the admin HTTP server (/healthz, /readyz, /metrics, /loglevel); port 0 picks one; empty or none disables it"),
        SettingDefinition("database-url", default: nil, secret: true, whenUnset: "an embedded cluster in data-dir",
                          help: "PostgreSQL URL or keyword string; unset runs an embedded cluster in data-dir"),
        SettingDefinition("data-dir", default: ".orchestrator/pgdata", help: "folder of the embedded PostgreSQL cluster"),
        SettingDefinition("embedded-port", default: "54329", help: "port of the embedded PostgreSQL cluster (it also listens on a socket in data-dir)"),
        SettingDefinition("database-pool-size", default: "16", help: "most PostgreSQL connections the server opens"),
        SettingDefinition("catalog-file", default: nil, whenUnset: "examples/catalogs/agent-team.json when present", help: "capability catalog (JSON) for the catalog planner; default examples/catalogs/agent-team.json when present"),
        SettingDefinition("lease-ttl", default: "30", help: "default lease time-to-live in seconds"),
        SettingDefinition("heartbeat-interval", default: "10", help: "how often executors are asked to heartbeat, in seconds"),
        SettingDefinition("direct-dispatch", default: "on",
                          help: "on: a new workflow's tasks without upstream tasks go straight to idle executor streams of this server as it is stored (no claim); off: always stored ready and claimed"),
        SettingDefinition("auth", default: "none", help: "none (development: no authentication, loud warning) or jwt (bearer JWTs)"),
        SettingDefinition("jwt-key-file", default: nil, help: "HS256 secret file or PEM public key (RSA: RS256, EC P-256: ES256) for auth jwt"),
        SettingDefinition("jwks-file", default: nil, help: "JWKS file of verification keys by kid (rotation), for auth jwt"),
        SettingDefinition("jwt-issuer", default: nil, help: "required iss claim; unset: not checked"),
        SettingDefinition("jwt-audience", default: nil, help: "required member of the aud claim; unset: not checked"),
        SettingDefinition("jwt-clock-skew", default: "60", help: "seconds of clock skew tolerated for exp and nbf"),
        SettingDefinition("otlp-endpoint", default: nil, help: "OTLP/HTTP collector base URL (spans POSTed as JSON to <url>/v1/traces); unset: no trace export"),
        SettingDefinition("otlp-service-name", default: "orchestratord", help: "service.name resource attribute of exported spans"),
        SettingDefinition("trace-sample-ratio", default: "1", help: "fraction (0...1) of traces started here that are recorded; a caller's sampled flag wins"),
    ] + tlsAndLimits

    static var keys: Set<String> { Set(all.map(\.key)) }
}
