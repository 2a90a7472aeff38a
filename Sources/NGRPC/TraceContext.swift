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
            traceID: String(parts[1]),
            parentSpanID: String(parts[2]),
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
        let headers = IncomingTraceHeaders(metadata)
        if let header = headers.traceparent, let parsed = parse(traceparent: header, tracestate: headers.tracestate) {
            return parsed
        }
        return start()
    }

    /// The `traceparent` to send downstream: this RPC's span becomes the parent.
    public var traceparent: String { "00-\(traceID)-\(spanID)-\(sampled ? "01" : "00")" }

    public var description: String { traceparent }

    /// Lower-case hex only (W3C Trace Context's HEXDIGLC): a `traceparent` with upper-case
    /// digits is invalid, and the call starts a new trace.
    static func isHex(_ text: Substring) -> Bool {
        text.utf8.allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }
    }

    /// `bytes` random bytes as lower-case hex, never all zero. Draws 64 bits per call to the
    /// system generator (one getrandom per 8 bytes, not per byte: this runs on every RPC).
    static func randomHex(bytes: Int) -> String {
        var generator = SystemRandomNumberGenerator()
        let digits: StaticString = "0123456789abcdef"
        while true {
            var utf8 = [UInt8]()
            utf8.reserveCapacity(bytes * 2)
            var allZero = true
            var remaining = bytes
            while remaining > 0 {
                var word = generator.next()
                if word != 0 { allZero = false }
                for _ in 0..<min(8, remaining) {
                    let byte = UInt8(truncatingIfNeeded: word)
                    word >>= 8
                    digits.withUTF8Buffer { hex in
                        utf8.append(hex[Int(byte >> 4)])
                        utf8.append(hex[Int(byte & 0xf)])
                    }
                }
                remaining -= 8
            }
            if !allZero { return String(decoding: utf8, as: UTF8.self) }
        }
    }
}
