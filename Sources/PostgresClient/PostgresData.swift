/// One value as it travels to or from PostgreSQL: its type, its wire format and its bytes
/// (nil for SQL NULL).
///
/// Text-format values are the UTF-8 text PostgreSQL would print; binary-format values use the
/// type's binary send/receive representation (big-endian integers, microseconds since 2000 for
/// timestamps, ...). Parameters use binary where it saves parsing or escaping (integers, bytea,
/// arrays, timestamps) and text where the two are the same (strings, JSON).
public struct PostgresData: Sendable, Equatable {
    public enum Format: Int32, Sendable {
        case text = 0
        case binary = 1
    }

    public var type: PostgresType
    public var format: Format
    public var bytes: [UInt8]?

    public init(type: PostgresType, format: Format, bytes: [UInt8]?) {
        self.type = type
        self.format = format
        self.bytes = bytes
    }

    /// SQL NULL of the given type.
    public static func null(_ type: PostgresType = .unspecified) -> PostgresData {
        PostgresData(type: type, format: .text, bytes: nil)
    }

    /// A value in PostgreSQL's text syntax for `type`, parsed by the server (e.g. a UUID kept as a
    /// String, an interval, a numeric).
    public static func text(_ value: String, type: PostgresType) -> PostgresData {
        PostgresData(type: type, format: .text, bytes: Array(value.utf8))
    }

    /// A UUID given as its canonical string; the server validates it.
    public static func uuid(_ value: String) -> PostgresData { .text(value, type: .uuid) }

    /// A JSON document stored as `jsonb`; the server validates it.
    public static func jsonb(_ value: String) -> PostgresData { .text(value, type: .jsonb) }

    /// A JSON document stored as `json` (kept verbatim).
    public static func json(_ value: String) -> PostgresData { .text(value, type: .json) }

    public var isNull: Bool { bytes == nil }
}

// MARK: - Big-endian helpers

extension FixedWidthInteger {
    @inline(__always)
    func appendBigEndian(to bytes: inout [UInt8]) {
        var value = self.bigEndian
        withUnsafeBytes(of: &value) { bytes.append(contentsOf: $0) }
    }
}

/// Reads big-endian fields out of a binary value, failing (not trapping) on short input.
struct ByteReader {
    let bytes: [UInt8]
    var offset: Int

    init(_ bytes: [UInt8], offset: Int = 0) {
        self.bytes = bytes
        self.offset = offset
    }

    var remaining: Int { bytes.count - offset }

    mutating func read<T: FixedWidthInteger>(_: T.Type) -> T? {
        let size = MemoryLayout<T>.size
        guard remaining >= size else { return nil }
        var value: T = 0
        for index in 0..<size { value = (value << 8) | T(truncatingIfNeeded: bytes[offset + index]) }
        offset += size
        return value
    }

    mutating func readBytes(_ count: Int) -> [UInt8]? {
        guard count >= 0, remaining >= count else { return nil }
        defer { offset += count }
        return Array(bytes[offset..<offset + count])
    }
}
