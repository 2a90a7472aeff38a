import Logging
import NGRPC
import OrchestratorTracing
import PostgresClient

/// The server's tracing: the process tracer, its batch exporter, the RPC interceptor, and the
/// database transaction hook. Off (no interceptor, a disabled tracer) without `otlp-endpoint`.
struct TracingRuntime: Sendable {
    let tracer: Tracer
    let processor: BatchSpanProcessor?

    /// Builds the exporter and installs the tracer as `TracingSystem.tracer`.
    static func start(_ settings: TracingSettings, logger: Logger) throws -> TracingRuntime {
        guard let endpoint = settings.otlpEndpoint else { return TracingRuntime(tracer: .disabled, processor: nil) }
        let exporter: OTLPHTTPExporter
        do {
            exporter = try OTLPHTTPExporter(endpoint: endpoint, serviceName: settings.serviceName)
        } catch {
            throw SettingsError(description: "otlp-endpoint: \(error)")
        }
        let processor = BatchSpanProcessor(exporter: exporter) { failure in
            if let failure {
                logger.warning("trace export failing; spans are dropped until the collector answers", metadata: ["error": "\(failure)"])
            } else {
                logger.notice("trace export recovered", metadata: ["endpoint": "\(exporter.endpoint)"])
            }
        }
        let tracer = Tracer(processor: processor, sampler: Sampler(ratio: settings.sampleRatio))
        TracingSystem.bootstrap(tracer)
        logger.info("exporting traces", metadata: [
            "endpoint": "\(exporter.endpoint)", "service_name": "\(settings.serviceName)", "sample_ratio": "\(settings.sampleRatio)",
        ])
        return TracingRuntime(tracer: tracer, processor: processor)
    }

    /// The RPC span interceptor, placed right after the trace-logging interceptor (outermost).
    var interceptors: [any ServerInterceptor] { processor == nil ? [] : [TracingInterceptor(tracer: tracer)] }

    /// Sends the spans still queued (bounded by the exporter's timeout).
    func shutdown(logger: Logger) async {
        guard let processor else { return }
        await processor.shutdown()
        let statistics = processor.statistics
        logger.info("trace export stopped", metadata: [
            "exported": "\(statistics.exported)", "dropped": "\(statistics.dropped)", "failed": "\(statistics.failedSpans)",
        ])
    }
}

/// Records each database transaction as a client span under the current span. Transactions
/// outside any span (background loops: the lease keeper, the reaper) are not recorded: they
/// belong to no request, and would be a root span every second.
struct TracingTransactionObserver: PostgresTransactionObserver {
    func transactionStarted(isolation: PostgresIsolation) -> (any PostgresTransactionObservation)? {
        guard let parent = Tracer.current, parent.sampled else { return nil }
        let span = TracingSystem.tracer.startSpan(
            "db.transaction", kind: .client, parent: parent,
            attributes: ["db.system": "postgresql", "db.postgresql.isolation": .string(isolation.rawValue)])
        return TransactionSpan(span: span)
    }

    struct TransactionSpan: PostgresTransactionObservation {
        let span: Span
        func transactionEnded(attempts: Int, error: (any Error)?) {
            span.setAttribute("db.transaction.attempts", .int(attempts))
            if let error { span.recordError(error) }
            span.end()
        }
    }
}
