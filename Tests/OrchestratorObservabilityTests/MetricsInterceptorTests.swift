import Logging
import NGRPC
import OrchestratorMetrics
@testable import OrchestratorObservability
import Synchronization
import Testing

/// A request source with no messages and a sink that drops them: the interceptor only looks at
/// the outcome of `next`.
struct NoMessages: RawMessageSource, RawMessageSink {
    func next() async throws -> [UInt8]? { nil }
    func sendHeaders(_ metadata: Metadata) async throws {}
    func send(_ message: [UInt8]) async throws {}
}

func context(_ service: String, _ method: String) -> ServerContext {
    ServerContext(
        method: MethodDescriptor(service: service, method: method, kind: .unary), requestMetadata: Metadata(), deadline: nil,
        trace: TraceContext(traceID: "4bf92f3577b34da6a3ce929d0e0e4736", parentSpanID: "", spanID: "00f067aa0ba902b7", sampled: true, traceState: nil, startedLocally: false),
        peer: "test")
}

struct Plain: Error {}

@Suite("RPC metrics interceptor")
struct MetricsInterceptorTests {
    @Test func countsAndTimesCallsByMethodAndCodeAndTracksActiveCalls() async throws {
        let registry = MetricsRegistry()
        let get = context("demo.v1.Things", "Get")
        let interceptor = MetricsInterceptor(registry: registry, methodPaths: [get.method.path])
        let calls = [interceptor].wrapping { _, _, context in
            switch context.requestMetadata["outcome"] ?? "" {
            case "invalid": throw RPCStatus(.invalidArgument, "bad")
            case "plain": throw Plain()
            default: return
            }
        }
        try await calls(NoMessages(), NoMessages(), get)
        try await calls(NoMessages(), NoMessages(), get)
        var invalid = Metadata()
        invalid.add("outcome", "invalid")
        await #expect(throws: RPCStatus.self) {
            try await calls(NoMessages(), NoMessages(), ServerContext(method: get.method, requestMetadata: invalid, deadline: nil, trace: get.trace, peer: "test"))
        }
        var plain = Metadata()
        plain.add("outcome", "plain")
        await #expect(throws: Plain.self) {
            try await calls(NoMessages(), NoMessages(), ServerContext(method: get.method, requestMetadata: plain, deadline: nil, trace: get.trace, peer: "test"))
        }
        // A path the interceptor was not told about is still counted.
        try await calls(NoMessages(), NoMessages(), context("demo.v1.Things", "Other"))

        let requests = registry.counter("orchestrator_rpc_requests_total", help: "", labels: ["method", "code"])
        #expect(requests.labels("demo.v1.Things/Get", "OK").current == 2)
        #expect(requests.labels("demo.v1.Things/Get", "INVALID_ARGUMENT").current == 1)
        #expect(requests.labels("demo.v1.Things/Get", "INTERNAL").current == 1)
        #expect(requests.labels("demo.v1.Things/Other", "OK").current == 1)
        let durations = registry.histogram("orchestrator_rpc_duration_seconds", help: "", labels: ["method", "code"], buckets: Histogram.latencyBounds)
        #expect(durations.labels("demo.v1.Things/Get", "OK").snapshot.count == 2)
        let active = registry.gauge("orchestrator_rpc_active", help: "", labels: ["method"])
        #expect(active.labels("demo.v1.Things/Get").current == 0)
    }

    @Test func activeGaugeCountsCallsWhileTheyRun() async throws {
        let registry = MetricsRegistry()
        let call = context("demo.v1.Things", "Watch")
        let interceptor = MetricsInterceptor(registry: registry, methodPaths: [call.method.path])
        let active = registry.gauge("orchestrator_rpc_active", help: "", labels: ["method"]).labels("demo.v1.Things/Watch")
        let (started, startedSignal) = AsyncStream<Void>.makeStream()
        let (release, releaseSignal) = AsyncStream<Void>.makeStream()
        let handler = [interceptor].wrapping { _, _, _ in
            startedSignal.yield()
            for await _ in release { return }
        }
        let running = Task { try await handler(NoMessages(), NoMessages(), call) }
        for await _ in started { break }
        #expect(active.current == 1)
        releaseSignal.yield()
        try await running.value
        #expect(active.current == 0)
    }

    @Test func logContextInterceptorBindsTheCallsTraceID() async throws {
        let seen = Mutex<String?>(nil)
        let handler = [LogContextInterceptor()].wrapping { _, _, _ in
            seen.withLock { $0 = LogContext.traceID }
        }
        try await handler(NoMessages(), NoMessages(), context("demo.v1.Things", "Get"))
        #expect(seen.withLock { $0 } == "4bf92f3577b34da6a3ce929d0e0e4736")
        #expect(LogContext.traceID == nil)
    }
}
