import Synchronization

/// Trace ids for every RPC without a system call each: `TraceContext.start()` draws every byte
/// from the system generator (32 `getrandom` calls per RPC, a tenth of the server's CPU time in
/// a profile). Trace and span ids need uniqueness, not secrecy, so the transport uses SplitMix64
/// over an atomic counter seeded once from the system generator.
enum FastTraceIDs {
    private static let counter = Atomic<UInt64>(UInt64.random(in: .min ... .max))

    static func next() -> UInt64 {
        var z = counter.wrappingAdd(0x9E37_79B9_7F4A_7C15, ordering: .relaxed).newValue
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        let value = z ^ (z >> 31)
        return value == 0 ? 1 : value
    }

    private static let digits: StaticString = "0123456789abcdef"

    /// Written straight into the String's storage: no intermediate byte array per id.
    static func hex(words: Int) -> String {
        String(unsafeUninitializedCapacity: words * 16) { buffer in
            for word in 0..<words {
                var value = next()
                for index in (0..<16).reversed() {
                    buffer[word * 16 + index] = digits.utf8Start[Int(value & 0xF)]
                    value >>= 4
                }
            }
            return words * 16
        }
    }
}

extension TraceContext {
    /// Like `from(_:)`, with ids from `FastTraceIDs`.
    static func forIncomingCall(_ metadata: Metadata) -> TraceContext {
        let headers = IncomingTraceHeaders(metadata)
        if let header = headers.traceparent, let parsed = parse(traceparent: header, tracestate: headers.tracestate) {
            return parsed
        }
        let span = FastTraceIDs.hex(words: 1)
        return TraceContext(
            traceID: FastTraceIDs.hex(words: 2), parentSpanID: span, spanID: span, sampled: true, traceState: nil,
            startedLocally: true)
    }
}
