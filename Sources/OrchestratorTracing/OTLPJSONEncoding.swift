/// Encodes spans as an OTLP/JSON `ExportTraceServiceRequest`
/// (https://opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding): field names in
/// lowerCamelCase, trace and span ids as hex strings (not base64), enums as integers, 64-bit
/// integers as decimal strings.
public struct OTLPJSONEncoding: Sendable {
    /// Attributes of the resource every span belongs to; `service.name` first.
    public let resource: [(String, SpanAttribute)]
    public let scopeName: String
    public let scopeVersion: String

    public init(serviceName: String, resourceAttributes: [String: SpanAttribute] = [:], scopeName: String = "orchestrator", scopeVersion: String = "1") {
        var resource: [(String, SpanAttribute)] = [("service.name", .string(serviceName))]
        for key in resourceAttributes.keys.sorted() where key != "service.name" {
            resource.append((key, resourceAttributes[key]!))
        }
        self.resource = resource
        self.scopeName = scopeName
        self.scopeVersion = scopeVersion
    }

    public func encode(_ spans: [SpanData]) -> [UInt8] {
        var out = JSONWriter()
        out.raw("{\"resourceSpans\":[{\"resource\":{\"attributes\":")
        out.attributes(resource)
        out.raw("},\"scopeSpans\":[{\"scope\":{\"name\":")
        out.string(scopeName)
        out.raw(",\"version\":")
        out.string(scopeVersion)
        out.raw("},\"spans\":[")
        for (index, span) in spans.enumerated() {
            if index > 0 { out.raw(",") }
            encode(span, into: &out)
        }
        out.raw("]}]}]}")
        return out.bytes
    }

    func encode(_ span: SpanData, into out: inout JSONWriter) {
        out.raw("{\"traceId\":")
        out.string(span.traceID)
        out.raw(",\"spanId\":")
        out.string(span.spanID)
        if let parent = span.parentSpanID {
            out.raw(",\"parentSpanId\":")
            out.string(parent)
        }
        if let state = span.traceState, !state.isEmpty {
            out.raw(",\"traceState\":")
            out.string(state)
        }
        out.raw(",\"name\":")
        out.string(span.name)
        out.raw(",\"kind\":\(span.kind.rawValue),\"startTimeUnixNano\":\"\(span.startUnixNanos)\",\"endTimeUnixNano\":\"\(span.endUnixNanos)\"")
        out.raw(",\"attributes\":")
        out.attributes(Self.sorted(span.attributes))
        if !span.events.isEmpty {
            out.raw(",\"events\":[")
            for (index, event) in span.events.enumerated() {
                if index > 0 { out.raw(",") }
                out.raw("{\"timeUnixNano\":\"\(event.timeUnixNanos)\",\"name\":")
                out.string(event.name)
                out.raw(",\"attributes\":")
                out.attributes(Self.sorted(event.attributes))
                out.raw("}")
            }
            out.raw("]")
        }
        if !span.links.isEmpty {
            out.raw(",\"links\":[")
            for (index, link) in span.links.enumerated() {
                if index > 0 { out.raw(",") }
                out.raw("{\"traceId\":")
                out.string(link.traceID)
                out.raw(",\"spanId\":")
                out.string(link.spanID)
                out.raw(",\"attributes\":")
                out.attributes(Self.sorted(link.attributes))
                out.raw("}")
            }
            out.raw("]")
        }
        out.raw(",\"status\":{\"code\":\(span.status.code)")
        if case .error(let message) = span.status {
            out.raw(",\"message\":")
            out.string(message)
        }
        out.raw("}}")
    }

    static func sorted(_ attributes: [String: SpanAttribute]) -> [(String, SpanAttribute)] {
        attributes.keys.sorted().map { ($0, attributes[$0]!) }
    }
}

/// Appends JSON text to a byte buffer.
struct JSONWriter {
    var bytes: [UInt8] = []

    mutating func raw(_ text: String) { bytes.append(contentsOf: text.utf8) }

    mutating func string(_ text: String) {
        bytes.append(0x22)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": raw("\\\"")
            case "\\": raw("\\\\")
            case "\n": raw("\\n")
            case "\r": raw("\\r")
            case "\t": raw("\\t")
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                raw("\\u" + String(repeating: "0", count: 4 - hex.count) + hex)
            default: bytes.append(contentsOf: String(scalar).utf8)
            }
        }
        bytes.append(0x22)
    }

    mutating func attributes(_ attributes: [(String, SpanAttribute)]) {
        raw("[")
        for (index, (key, value)) in attributes.enumerated() {
            if index > 0 { raw(",") }
            raw("{\"key\":")
            string(key)
            raw(",\"value\":{")
            switch value {
            case .string(let text):
                raw("\"stringValue\":")
                string(text)
            case .int(let number): raw("\"intValue\":\"\(number)\"")
            case .double(let number):
                // JSON has no NaN or infinities; OTLP/JSON spells them as strings.
                if number.isNaN { raw("\"doubleValue\":\"NaN\"") }
                else if number.isInfinite { raw("\"doubleValue\":\"\(number < 0 ? "-Infinity" : "Infinity")\"") }
                else { raw("\"doubleValue\":\(number)") }
            case .bool(let flag): raw("\"boolValue\":\(flag)")
            }
            raw("}}")
        }
        raw("]")
    }
}
