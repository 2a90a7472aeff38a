import Foundation
import Logging
import NGRPC

/// Logs every call with its method, outcome, duration and W3C trace id, so a request can be
/// followed from the client's `traceparent` into the server's log.
struct TraceLoggingInterceptor: ServerInterceptor {
    let logger: Logger

    func intercept(source: any RawMessageSource, sink: any RawMessageSink, context: ServerContext, next: RawHandler) async throws {
        let started = ContinuousClock.now
        var metadata: Logger.Metadata = [
            "method": "\(context.method.path)", "trace_id": "\(context.trace.traceID)", "peer": "\(context.peer)",
        ]
        do {
            try await next(source, sink, context)
            metadata["status"] = "OK"
        } catch let status as RPCStatus {
            metadata["status"] = "\(status.code.name)"
            metadata["duration_ms"] = "\(Self.milliseconds(since: started))"
            logger.info("rpc", metadata: metadata)
            throw status
        }
        metadata["duration_ms"] = "\(Self.milliseconds(since: started))"
        logger.debug("rpc", metadata: metadata)
    }

    static func milliseconds(since start: ContinuousClock.Instant) -> String {
        let elapsed = ContinuousClock.now - start
        let ms = Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
        return String(format: "%.3f", ms)
    }
}
