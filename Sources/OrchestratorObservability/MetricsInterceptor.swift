public import NGRPC
public import OrchestratorMetrics
import Synchronization

/// Counts and times every call by method and final status code:
/// `orchestrator_rpc_requests_total{method,code}`, `orchestrator_rpc_duration_seconds{method,code}`
/// and `orchestrator_rpc_active{method}`.
///
/// `method` is the path without its leading slash (`orchestrator.v1.Workflows/SubmitWorkflow`);
/// `code` the status name (`OK`, `INVALID_ARGUMENT`, …): a thrown `RPCStatus` gives its code, any
/// other error `INTERNAL` (what the transport answers). Calls the transport refuses before a
/// handler runs (unknown method, malformed request) are not counted here.
///
/// Hot path: the per-method children are made once, at init, for every routed method; per code
/// they are created on first use and then read from a fixed array, so a call costs two atomic
/// updates, one histogram observation and no allocation.
public struct MetricsInterceptor: ServerInterceptor {
    let requests: CounterFamily
    let durations: HistogramFamily
    let active: GaugeFamily
    private let byPath: [String: PerMethod]

    /// - Parameter methodPaths: every routed `:path` (e.g. `router.routes.keys`); others are
    ///   looked up on the fly.
    public init(registry: MetricsRegistry, methodPaths: some Sequence<String>) {
        requests = registry.counter("orchestrator_rpc_requests_total", help: "RPCs handled, by method and final status code.", labels: ["method", "code"])
        durations = registry.histogram(
            "orchestrator_rpc_duration_seconds", help: "Time from the start of an RPC's handler to its final status, by method and code.",
            labels: ["method", "code"], buckets: Histogram.latencyBounds)
        active = registry.gauge("orchestrator_rpc_active", help: "RPCs whose handler is running now, by method (open streams included).", labels: ["method"])
        var byPath: [String: PerMethod] = [:]
        for path in methodPaths {
            byPath[path] = PerMethod(label: Self.label(path), requests: requests, durations: durations, active: active)
        }
        self.byPath = byPath
    }

    public func intercept(source: any RawMessageSource, sink: any RawMessageSink, context: ServerContext, next: RawHandler) async throws {
        let path = context.method.path
        let method = byPath[path] ?? PerMethod(label: Self.label(path), requests: requests, durations: durations, active: active)
        let started = ContinuousClock.now
        method.active.increment()
        defer { method.active.decrement() }
        do {
            try await next(source, sink, context)
            method.record(.ok, elapsed: ContinuousClock.now - started)
        } catch let status as RPCStatus {
            method.record(status.code, elapsed: ContinuousClock.now - started)
            throw status
        } catch {
            method.record(.internal, elapsed: ContinuousClock.now - started)
            throw error
        }
    }

    static func label(_ path: String) -> String {
        path.hasPrefix("/") ? String(path.dropFirst()) : path
    }

    /// One method's children; the per-code ones are filled on first use.
    final class PerMethod: Sendable {
        let label: String
        let active: Gauge
        private let requests: CounterFamily
        private let durations: HistogramFamily
        private let byCode: Mutex<[(Counter, Histogram)?]>

        init(label: String, requests: CounterFamily, durations: HistogramFamily, active: GaugeFamily) {
            self.label = label
            self.requests = requests
            self.durations = durations
            self.active = active.labels(label)
            byCode = Mutex(Array(repeating: nil, count: 17))
        }

        func record(_ code: RPCStatus.Code, elapsed: Duration) {
            let index = Int(code.rawValue)
            let pair = byCode.withLock { table -> (Counter, Histogram) in
                if index < table.count, let pair = table[index] { return pair }
                let pair = (requests.labels(label, code.name), durations.labels(label, code.name))
                if index < table.count { table[index] = pair }
                return pair
            }
            pair.0.increment()
            pair.1.observe(elapsed)
        }
    }
}
