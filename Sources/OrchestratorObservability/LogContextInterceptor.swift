public import NGRPC
import Logging

/// Binds the call's W3C trace id into `LogContext` for the whole handler, so every log line the
/// call causes carries `trace_id`. Place it first (outermost) so the other interceptors' lines
/// carry it too.
public struct LogContextInterceptor: ServerInterceptor {
    public init() {}

    public func intercept(source: any RawMessageSource, sink: any RawMessageSink, context: ServerContext, next: RawHandler) async throws {
        try await LogContext.$traceID.withValue(context.trace.traceID) {
            try await next(source, sink, context)
        }
    }
}
