/// The part of a span that crosses process boundaries: W3C trace context
/// (https://www.w3.org/TR/trace-context/).
public struct SpanContext: Sendable, Hashable, CustomStringConvertible {
    /// 32 lower-case hex digits, never all zero.
    public var traceID: String
    /// 16 lower-case hex digits, never all zero.
    public var spanID: String
    /// The W3C `sampled` flag: whether this trace's spans are recorded and exported.
    public var sampled: Bool
    /// The `tracestate` header, passed along verbatim.
    public var traceState: String?

    public init(traceID: String, spanID: String, sampled: Bool, traceState: String? = nil) {
        self.traceID = traceID
        self.spanID = spanID
        self.sampled = sampled
        self.traceState = traceState
    }

    /// `00-<trace id>-<span id>-<flags>`: this span becomes the parent of whatever receives it.
    public var traceparent: String { "00-\(traceID)-\(spanID)-\(sampled ? "01" : "00")" }

    public var description: String { traceparent }

    /// The context a `traceparent` header describes (the sender's span), or nil when malformed.
    /// Follows the W3C parsing rules: version `ff` is invalid, version `00` has exactly four
    /// fields, later versions may append fields; all-zero ids are invalid.
    public static func parse(traceparent: String, tracestate: String? = nil) -> SpanContext? {
        let parts = traceparent.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count >= 4,
            parts[0].utf8.count == 2, TraceIdentifiers.isHex(parts[0]), parts[0] != "ff",
            parts[0] != "00" || parts.count == 4,
            TraceIdentifiers.isValidTraceID(parts[1]),
            TraceIdentifiers.isValidSpanID(parts[2]),
            parts[3].utf8.count == 2, TraceIdentifiers.isHex(parts[3]), let flags = UInt8(parts[3], radix: 16)
        else { return nil }
        return SpanContext(traceID: String(parts[1]), spanID: String(parts[2]), sampled: flags & 1 == 1, traceState: tracestate)
    }
}
