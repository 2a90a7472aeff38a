import Synchronization

/// Trace and span ids as lower-case hex.
///
/// Random ids come from SplitMix64 over an atomic counter seeded once from the system generator:
/// ids need uniqueness, not secrecy, and a system call per id would show in the profile of every
/// RPC (the same reasoning as NGRPC's `FastTraceIDs`).
public enum TraceIdentifiers {
    private static let counter = Atomic<UInt64>(UInt64.random(in: .min ... .max))
    private static let digits: [UInt8] = Array("0123456789abcdef".utf8)

    static func nextWord() -> UInt64 {
        var z = counter.wrappingAdd(0x9E37_79B9_7F4A_7C15, ordering: .relaxed).newValue
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// 32 random hex digits, never all zero.
    public static func randomTraceID() -> String {
        while true {
            let (high, low) = (nextWord(), nextWord())
            if high != 0 || low != 0 { return hex(high) + hex(low) }
        }
    }

    /// 16 random hex digits, never all zero.
    public static func randomSpanID() -> String {
        while true {
            let word = nextWord()
            if word != 0 { return hex(word) }
        }
    }

    /// A span id computed from `name` (FNV-1a, 64 bits), never all zero.
    ///
    /// The workflow's submission span gets the id derived from the workflow id, so that work
    /// done for the workflow later (dispatch, in any server process) can name that span as its
    /// parent knowing only the workflow id and its stored trace id.
    public static func derivedSpanID(from name: String) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in name.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        return hex(hash == 0 ? 1 : hash)
    }

    /// `value` as 16 lower-case hex digits.
    public static func hex(_ value: UInt64) -> String {
        var bytes = [UInt8](repeating: 0, count: 16)
        var rest = value
        for index in (0..<16).reversed() {
            bytes[index] = digits[Int(rest & 0xF)]
            rest >>= 4
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    public static func isValidTraceID<S: StringProtocol>(_ text: S) -> Bool {
        text.utf8.count == 32 && isHex(text) && !text.utf8.allSatisfy { $0 == 48 }
    }

    public static func isValidSpanID<S: StringProtocol>(_ text: S) -> Bool {
        text.utf8.count == 16 && isHex(text) && !text.utf8.allSatisfy { $0 == 48 }
    }

    /// Lower-case hex only: W3C Trace Context's HEXDIGLC; a `traceparent` with upper-case digits
    /// is invalid and ignored (a new trace starts), as the spec's test suite expects.
    static func isHex<S: StringProtocol>(_ text: S) -> Bool {
        text.utf8.allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }
    }
}
