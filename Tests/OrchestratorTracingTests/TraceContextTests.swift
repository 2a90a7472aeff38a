import Testing

@testable import OrchestratorTracing

@Suite("Trace identifiers and W3C trace context")
struct TraceContextTests {
    @Test func randomIdsAreValidHexAndDistinct() {
        var traces = Set<String>()
        var spans = Set<String>()
        for _ in 0..<10_000 {
            let trace = TraceIdentifiers.randomTraceID()
            let span = TraceIdentifiers.randomSpanID()
            #expect(TraceIdentifiers.isValidTraceID(trace))
            #expect(TraceIdentifiers.isValidSpanID(span))
            #expect(trace == trace.lowercased())
            traces.insert(trace)
            spans.insert(span)
        }
        #expect(traces.count == 10_000)
        #expect(spans.count == 10_000)
    }

    @Test func derivedSpanIdsAreStablePerNameAndDifferAcrossNames() {
        let first = TraceIdentifiers.derivedSpanID(from: "wf_01HZY")
        #expect(first == TraceIdentifiers.derivedSpanID(from: "wf_01HZY"))
        #expect(first != TraceIdentifiers.derivedSpanID(from: "wf_01HZZ"))
        #expect(TraceIdentifiers.isValidSpanID(first))
        // FNV-1a of the empty string is its offset basis.
        #expect(TraceIdentifiers.derivedSpanID(from: "") == "cbf29ce484222325")
    }

    @Test func parsesAndFormatsTraceparent() throws {
        let header = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        let context = try #require(SpanContext.parse(traceparent: header, tracestate: "congo=t61rcWkgMzE"))
        #expect(context.traceID == "4bf92f3577b34da6a3ce929d0e0e4736")
        #expect(context.spanID == "00f067aa0ba902b7")
        #expect(context.sampled)
        #expect(context.traceState == "congo=t61rcWkgMzE")
        #expect(context.traceparent == header)
        // Upper-case hex is not HEXDIGLC: the header is invalid (W3C Trace Context, and its test
        // suite's "illegal characters" cases), in any field.
        #expect(SpanContext.parse(traceparent: header.uppercased()) == nil)
        #expect(SpanContext.parse(traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01") == nil)
        #expect(SpanContext.parse(traceparent: "0A-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01") == nil)
        #expect(SpanContext.parse(traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")?.sampled == false)
        // A future version may append fields.
        #expect(SpanContext.parse(traceparent: "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra") != nil)
    }

    @Test(arguments: [
        "", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-zz",
    ])
    func rejectsMalformedTraceparent(_ header: String) {
        #expect(SpanContext.parse(traceparent: header) == nil)
    }

    @Test func ratioSamplerDecidesByTheLow64BitsOfTheTraceId() {
        let half = Sampler(ratio: 0.5)
        #expect(half.shouldSample(traceID: "ffffffffffffffff0000000000000001"))
        #expect(!half.shouldSample(traceID: "0000000000000000ffffffffffffffff"))
        #expect(Sampler(ratio: 1).shouldSample(traceID: "0000000000000000ffffffffffffffff"))
        #expect(!Sampler(ratio: 0).shouldSample(traceID: "ffffffffffffffff0000000000000001"))
        let sampled = (0..<10_000).filter { _ in half.shouldSample(traceID: TraceIdentifiers.randomTraceID()) }.count
        #expect((4_500...5_500).contains(sampled))
    }
}
