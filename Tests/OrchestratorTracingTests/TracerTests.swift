import Synchronization
import Testing

@testable import OrchestratorTracing

/// A clock that advances 1 µs per reading, so spans have distinct, ordered times.
final class StepClock: Sendable {
    private let now = Atomic<UInt64>(1_700_000_000_000_000_000)
    func read() -> UInt64 { now.wrappingAdd(1_000, ordering: .relaxed).newValue }
}

@Suite("Tracer: parents, propagation and sampling")
struct TracerTests {
    let exporter = InMemorySpanExporter()
    let clock = StepClock()

    func tracer(ratio: Double = 1) -> Tracer {
        let clock = self.clock
        return Tracer(processor: SimpleSpanProcessor(exporter: exporter), sampler: Sampler(ratio: ratio), clock: { clock.read() })
    }

    @Test func nestedSpansFindTheirParentThroughTheTaskLocal() async throws {
        let tracer = tracer()
        let incoming = try #require(SpanContext.parse(traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"))
        let server = tracer.startSpan("rpc", kind: .server, parent: incoming)
        await tracer.run(server) { _ in
            await tracer.withSpan("planning") { planning in
                planning.setAttribute("planner", "explicit")
                await tracer.withSpan("db.transaction", kind: .client) { _ in }
            }
            // Child tasks inherit the current span.
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await tracer.withSpan("in-child-task") { _ in } }
            }
        }
        let spans = Dictionary(uniqueKeysWithValues: exporter.spans.map { ($0.name, $0) })
        let rpc = try #require(spans["rpc"])
        let planning = try #require(spans["planning"])
        let db = try #require(spans["db.transaction"])
        let child = try #require(spans["in-child-task"])
        #expect(Set(exporter.spans.map(\.traceID)) == ["4bf92f3577b34da6a3ce929d0e0e4736"])
        #expect(rpc.parentSpanID == "00f067aa0ba902b7")
        #expect(planning.parentSpanID == rpc.spanID)
        #expect(db.parentSpanID == planning.spanID)
        #expect(child.parentSpanID == rpc.spanID)
        #expect(planning.attributes["planner"] == .string("explicit"))
        #expect(rpc.startUnixNanos < planning.startUnixNanos && planning.endUnixNanos < rpc.endUnixNanos)
        #expect(Tracer.current == nil)
    }

    @Test func aSpanWithoutParentStartsANewTraceAndAFailureMarksItsStatus() async throws {
        struct Boom: Error {}
        let tracer = tracer()
        await #expect(throws: Boom.self) {
            try await tracer.withSpan("work") { _ in throw Boom() }
        }
        let span = try #require(exporter.spans.first)
        #expect(span.parentSpanID == nil)
        #expect(TraceIdentifiers.isValidTraceID(span.traceID))
        #expect(span.status == .error("Boom()"))
        #expect(span.events.map(\.name) == ["exception"])
    }

    @Test func explicitIdsAndLinks() async throws {
        let tracer = tracer()
        let parent = SpanContext(traceID: "0af7651916cd43dd8448eb211c80319c", spanID: TraceIdentifiers.derivedSpanID(from: "wf_1"), sampled: true)
        let span = tracer.startSpan(
            "dispatch", kind: .producer, parent: parent, links: [SpanLink(traceID: "4bf92f3577b34da6a3ce929d0e0e4736", spanID: "00f067aa0ba902b7")])
        span.end()
        span.end()  // a second end is ignored
        #expect(exporter.spans.count == 1)
        let data = try #require(exporter.spans.first)
        #expect(data.parentSpanID == parent.spanID)
        #expect(data.links.first?.spanID == "00f067aa0ba902b7")
        #expect(span.context.traceparent == "00-0af7651916cd43dd8448eb211c80319c-\(span.context.spanID)-01")
    }

    @Test func unsampledTracesPropagateButRecordNothing() async throws {
        let tracer = tracer(ratio: 0)
        await tracer.withSpan("root") { root in
            #expect(!root.isRecording)
            #expect(!root.context.sampled)
            await tracer.withSpan("child") { child in
                #expect(child.context.traceID == root.context.traceID)
                #expect(!child.isRecording)
            }
        }
        // An incoming sampled flag wins over the ratio.
        let incoming = SpanContext(traceID: "4bf92f3577b34da6a3ce929d0e0e4736", spanID: "00f067aa0ba902b7", sampled: true)
        tracer.startSpan("rpc", parent: incoming).end()
        #expect(exporter.spans.map(\.name) == ["rpc"])
        // A disabled tracer still hands out valid contexts (assignments need a parent span id).
        let disabled = Tracer.disabled.startSpan("x")
        #expect(TraceIdentifiers.isValidSpanID(disabled.context.spanID))
    }
}
