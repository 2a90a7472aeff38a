/// The `grpc-timeout` header: at most 8 ASCII digits followed by one unit letter
/// (`H` hours, `M` minutes, `S` seconds, `m` milliseconds, `u` microseconds, `n` nanoseconds).
enum GRPCTimeout {
    /// Parses a header value; nil when it is malformed (empty, more than 8 digits, unknown unit).
    static func parse(_ value: some StringProtocol) -> Duration? {
        let bytes = Array(value.utf8)
        guard bytes.count >= 2, bytes.count <= 9 else { return nil }
        var amount: Int64 = 0
        for byte in bytes.dropLast() {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            amount = amount * 10 + Int64(byte - UInt8(ascii: "0"))
        }
        switch bytes[bytes.count - 1] {
        case UInt8(ascii: "H"): return .seconds(amount * 3600)
        case UInt8(ascii: "M"): return .seconds(amount * 60)
        case UInt8(ascii: "S"): return .seconds(amount)
        case UInt8(ascii: "m"): return .milliseconds(amount)
        case UInt8(ascii: "u"): return .microseconds(amount)
        case UInt8(ascii: "n"): return .nanoseconds(amount)
        default: return nil
        }
    }

    /// Encodes a duration in the finest unit that fits 8 digits, rounding up so a deadline is never
    /// shortened. Negative durations encode as `0n` (already expired).
    static func encode(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        if seconds < 0 || (seconds == 0 && attoseconds <= 0) { return "0n" }
        // Nanoseconds, saturating: durations longer than ~292 years are clamped.
        let nanos: Int64 =
            seconds > Int64.max / 1_000_000_000 - 1
            ? Int64.max : seconds * 1_000_000_000 + (attoseconds + 999_999_999) / 1_000_000_000
        let limit: Int64 = 99_999_999
        let units: [(Int64, Character)] = [
            (1, "n"), (1_000, "u"), (1_000_000, "m"), (1_000_000_000, "S"), (60_000_000_000, "M"), (3_600_000_000_000, "H"),
        ]
        for (scale, unit) in units {
            let value = nanos / scale + (nanos % scale == 0 ? 0 : 1)
            if value <= limit { return "\(value)\(unit)" }
        }
        return "\(limit)H"
    }
}
