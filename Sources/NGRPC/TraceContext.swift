/// A W3C trace context (https://www.w3.org/TR/trace-context/): read from `traceparent` /
/// `tracestate` metadata, or started fresh when a caller sends none, so every RPC has a trace id.
public struct TraceContext: Sendable, Hashable, CustomStringConvertible {
    /// 32 lower-case hex digits, never all zero.
    public var traceID: String
    /// 16 lower-case hex digits of the caller's span (the parent of this RPC's span).
    public var parentSpanID: String
    /// 16 lower-case hex digits identifying this RPC's own span.
    public var spanID: String
    public var sampled: Bool
    /// The `tracestate` header passed through verbatim, if any.
    public var traceState: String?
    /// True when the trace was started here because the caller sent no valid `traceparent`.
    public var startedLocally: Bool

    public init(traceID: String, parentSpanID: String, spanID: String, sampled: Bool, traceState: String?, startedLocally: Bool) {
        self.traceID = traceID
        self.parentSpanID = parentSpanID
        self.spanID = spanID
        self.sampled = sampled
        self.traceState = traceState
        self.startedLocally = startedLocally
    }

    /// Parses a `traceparent` value (`00-<trace-id>-<parent-id>-<flags>`); nil when malformed.
    public static func parse(traceparent: String, tracestate: String? = nil) -> TraceContext? {
        let parts = traceparent.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count >= 4,
            parts[0].count == 2, isHex(parts[0]), parts[0] != "ff",
            parts[1].count == 32, isHex(parts[1]), !parts[1].allSatisfy({ $0 == "0" }),
            parts[2].count == 16, isHex(parts[2]), !parts[2].allSatisfy({ $0 == "0" }),
            parts[3].count == 2, isHex(parts[3]),
            parts[0] != "00" || parts.count == 4
        else { return nil }
        let flags = UInt8(parts[3], radix: 16) ?? 0
        return TraceContext(
            traceID: parts[1].lowercased(),
            parentSpanID: parts[2].lowercased(),
            spanID: randomHex(bytes: 8),
            sampled: flags & 1 == 1,
            traceState: tracestate,
            startedLocally: false
        )
    }

    /// Starts a new trace with random ids.
    public static func start(sampled: Bool = true) -> TraceContext {
        let span = randomHex(bytes: 8)
        return TraceContext(
            traceID: randomHex(bytes: 16), parentSpanID: span, spanID: span,
            sampled: sampled, traceState: nil, startedLocally: true)
    }

    /// Reads the context from request metadata, starting a new trace when absent or malformed.
    public static func from(_ metadata: Metadata) -> TraceContext {
        if let header = metadata["traceparent"], let parsed = parse(traceparent: header, tracestate: metadata["tracestate"]) {
            return parsed
        }
        return start()
    }

    /// The `traceparent` to send downstream: this RPC's span becomes the parent.
    public var traceparent: String { "00-\(traceID)-\(spanID)-\(sampled ? "01" : "00")" }

    public var description: String { traceparent }

    static func isHex(_ text: Substring) -> Bool {
        text.utf8.allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) || ($0 >= 65 && $0 <= 70) }
    }

    static func randomHex(bytes: Int) -> String {
        var generator = SystemRandomNumberGenerator()
        var text = ""
        text.reserveCapacity(bytes * 2)
        let digits = Array("0123456789abcdef")
        var allZero = true
        for _ in 0..<bytes {
            let byte = UInt8.random(in: 0...255, using: &generator)
            if byte != 0 { allZero = false }
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0xf)])
        }
        return allZero ? randomHex(bytes: bytes) : text
    }
}
