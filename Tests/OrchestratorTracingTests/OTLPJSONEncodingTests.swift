import Foundation
import Testing

@testable import OrchestratorTracing

@Suite("OTLP/JSON encoding")
struct OTLPJSONEncodingTests {
    let span = SpanData(
        traceID: "4bf92f3577b34da6a3ce929d0e0e4736", spanID: "00f067aa0ba902b7", parentSpanID: "b7ad6b7169203331",
        traceState: "congo=t61rcWkgMzE", name: "orchestrator.v1.Workflows/SubmitQuery", kind: .server,
        startUnixNanos: 1_700_000_000_123_456_789, endUnixNanos: 1_700_000_000_223_456_789,
        attributes: ["rpc.system": "grpc", "rpc.grpc.status_code": .int(0), "sampled": true, "ratio": 0.25, "quote": "a\"b\n"],
        events: [SpanEvent(name: "exception", timeUnixNanos: 1_700_000_000_200_000_000, attributes: ["exception.message": "boom"])],
        links: [SpanLink(traceID: "0af7651916cd43dd8448eb211c80319c", spanID: "b9c7c989f97918e1")],
        status: .error("boom"))

    func decode(_ bytes: [UInt8]) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
    }

    @Test func requestShapeFollowsTheOTLPJSONMapping() throws {
        let encoding = OTLPJSONEncoding(serviceName: "orchestratord", resourceAttributes: ["service.instance.id": "host-1"])
        let root = try decode(encoding.encode([span]))
        let resourceSpans = try #require(root["resourceSpans"] as? [[String: Any]])
        #expect(resourceSpans.count == 1)
        let resource = try #require(resourceSpans[0]["resource"] as? [String: Any])
        let resourceAttributes = try #require(resource["attributes"] as? [[String: Any]])
        #expect(resourceAttributes.first?["key"] as? String == "service.name")
        #expect((resourceAttributes.first?["value"] as? [String: Any])?["stringValue"] as? String == "orchestratord")
        #expect(resourceAttributes.count == 2)
        let scopeSpans = try #require(resourceSpans[0]["scopeSpans"] as? [[String: Any]])
        let spans = try #require(scopeSpans[0]["spans"] as? [[String: Any]])
        let encoded = try #require(spans.first)

        // Ids are hex strings, not base64; 64-bit integers are decimal strings; enums are integers.
        #expect(encoded["traceId"] as? String == "4bf92f3577b34da6a3ce929d0e0e4736")
        #expect(encoded["spanId"] as? String == "00f067aa0ba902b7")
        #expect(encoded["parentSpanId"] as? String == "b7ad6b7169203331")
        #expect(encoded["traceState"] as? String == "congo=t61rcWkgMzE")
        #expect(encoded["kind"] as? Int == 2)
        #expect(encoded["startTimeUnixNano"] as? String == "1700000000123456789")
        #expect(encoded["endTimeUnixNano"] as? String == "1700000000223456789")
        let status = try #require(encoded["status"] as? [String: Any])
        #expect(status["code"] as? Int == 2)
        #expect(status["message"] as? String == "boom")

        let attributes = try #require(encoded["attributes"] as? [[String: Any]])
        var values: [String: [String: Any]] = [:]
        for attribute in attributes { values[attribute["key"] as! String] = attribute["value"] as? [String: Any] }
        #expect(values["rpc.system"]?["stringValue"] as? String == "grpc")
        #expect(values["rpc.grpc.status_code"]?["intValue"] as? String == "0")
        #expect(values["sampled"]?["boolValue"] as? Bool == true)
        #expect(values["ratio"]?["doubleValue"] as? Double == 0.25)
        #expect(values["quote"]?["stringValue"] as? String == "a\"b\n")

        let events = try #require(encoded["events"] as? [[String: Any]])
        #expect(events.first?["name"] as? String == "exception")
        #expect(events.first?["timeUnixNano"] as? String == "1700000000200000000")
        let links = try #require(encoded["links"] as? [[String: Any]])
        #expect(links.first?["spanId"] as? String == "b9c7c989f97918e1")
    }

    @Test func aRootSpanHasNoParentFieldAndUnsetStatusHasNoMessage() throws {
        var root = span
        root.parentSpanID = nil
        root.status = .unset
        root.events = []
        root.links = []
        let object = try decode(OTLPJSONEncoding(serviceName: "x").encode([root, span]))
        let spans = ((object["resourceSpans"] as! [[String: Any]])[0]["scopeSpans"] as! [[String: Any]])[0]["spans"] as! [[String: Any]]
        #expect(spans.count == 2)
        #expect(spans[0]["parentSpanId"] == nil)
        #expect(spans[0]["events"] == nil)
        #expect((spans[0]["status"] as? [String: Any])?.count == 1)
    }
}
