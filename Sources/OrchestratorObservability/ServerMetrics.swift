public import NGRPC
public import OrchestratorMetrics

/// Connection and stream counts of a `GRPCServer`, read from its counters at scrape time.
public enum ServerMetrics {
    public static func register(_ server: GRPCServer, into registry: MetricsRegistry) {
        registry.register("orchestrator_grpc_connections_accepted_total", help: "HTTP/2 connections accepted since start.", type: .counter) {
            [([], Double(server.statistics.connectionsAccepted))]
        }
        registry.register("orchestrator_grpc_connections_open", help: "HTTP/2 connections open now.", type: .gauge) {
            [([], Double(server.statistics.connectionsOpen))]
        }
        registry.register(
            "orchestrator_grpc_connections_refused_total",
            help: "Connections closed right after accept: over max-connections-per-client (reason client) or max-connections (reason server).",
            type: .counter, labels: ["reason"]
        ) {
            let statistics = server.statistics
            return [(["client"], Double(statistics.connectionsRefusedPerClient)), (["server"], Double(statistics.connectionsRefusedInAll))]
        }
        registry.register("orchestrator_grpc_streams_started_total", help: "gRPC calls (HTTP/2 streams) that reached a handler since start.", type: .counter) {
            [([], Double(server.statistics.callsStarted))]
        }
        registry.register("orchestrator_grpc_streams_active", help: "gRPC calls (HTTP/2 streams) open now.", type: .gauge) {
            [([], Double(server.statistics.callsActive))]
        }
        registry.register(
            "orchestrator_grpc_partial_request_bytes",
            help: "Bytes buffered in partly received request messages now (max-server-receive-buffer bounds it).", type: .gauge
        ) {
            [([], Double(server.statistics.partialRequestBytes))]
        }
        registry.register(
            "orchestrator_grpc_partial_requests_refused_total",
            help: "Request messages refused RESOURCE_EXHAUSTED because max-server-receive-buffer was full.", type: .counter
        ) {
            [([], Double(server.statistics.partialRequestsRefused))]
        }
    }
}
