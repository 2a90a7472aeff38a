import NGRPC
import OrchestratorTracing

/// Records one server span per RPC and makes it the task's current span, so the work the
/// handler does (planning, database transactions, dispatch) nests under it.
///
/// The span keeps the ids the transport already logged: its trace id is the call's trace id
/// (stored on workflows, tasks and events) and its span id is `context.trace.spanID`; its parent
/// is the caller's span from `traceparent`. A caller's sampled flag is honoured; a trace started
/// here is sampled by the configured ratio.
struct TracingInterceptor: ServerInterceptor {
    let tracer: Tracer

    func intercept(source: any RawMessageSource, sink: any RawMessageSink, context: ServerContext, next: RawHandler) async throws {
        let trace = context.trace
        let parent = trace.startedLocally
            ? nil : SpanContext(traceID: trace.traceID, spanID: trace.parentSpanID, sampled: trace.sampled, traceState: trace.traceState)
        let span = tracer.startSpan(
            "\(context.method.service)/\(context.method.method)", kind: .server, parent: parent, spanID: trace.spanID,
            traceID: trace.traceID, sampled: trace.startedLocally ? tracer.sampler.shouldSample(traceID: trace.traceID) : trace.sampled,
            attributes: [
                "rpc.system": "grpc", "rpc.service": .string(context.method.service), "rpc.method": .string(context.method.method),
                "network.peer.address": .string(context.peer),
            ])
        do {
            try await Tracer.$current.withValue(span.context) {
                try await next(source, sink, context)
            }
            span.setAttribute("rpc.grpc.status_code", .int(Int64(RPCStatus.Code.ok.rawValue)))
        } catch let status as RPCStatus {
            span.setAttribute("rpc.grpc.status_code", .int(Int64(status.code.rawValue)))
            if Self.isServerError(status.code) { span.setStatus(.error("\(status.code.name): \(status.message)")) }
            span.end()
            throw status
        } catch {
            span.recordError(error)
            span.end()
            throw error
        }
        span.end()
    }

    /// Codes that mean the server failed, per OpenTelemetry's gRPC conventions for server spans;
    /// a caller's mistake (INVALID_ARGUMENT, NOT_FOUND, …) leaves the span's status unset.
    static func isServerError(_ code: RPCStatus.Code) -> Bool {
        switch code {
        case .unknown, .deadlineExceeded, .unimplemented, .internal, .unavailable, .dataLoss: true
        default: false
        }
    }
}
