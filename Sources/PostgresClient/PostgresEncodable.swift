import Foundation

/// A Swift value that can be sent as a bound parameter.
///
/// Every parameter carries an explicit type OID, so `$1` never depends on the server's guess and
/// NULLs of an optional keep their type.
public protocol PostgresEncodable: Sendable {
    /// The PostgreSQL type this Swift type is sent as (also used for its NULL).
    static var postgresType: PostgresType { get }
    func encode() -> PostgresData
    /// How an array of this type is sent. The default is a PostgreSQL array (`text[]`, `int8[]`,
    /// ...) of the elements' binary forms; `UInt8` overrides it so `[UInt8]` is sent as `bytea`.
    static func encodeArray(_ elements: [Self]) -> PostgresData
    /// The array type for arrays of this type (`text[]` for `String`).
    static var postgresArrayType: PostgresType { get }
}

extension PostgresEncodable {
    public static var postgresArrayType: PostgresType { .unspecified }

    public static func encodeArray(_ elements: [Self]) -> PostgresData {
        // Binary array format: ndim, has-null flag, element OID, then (size, lower bound) per
        // dimension, then each element as (length or -1, bytes).
        var bytes: [UInt8] = []
        let elementType = postgresType
        Int32(elements.isEmpty ? 0 : 1).appendBigEndian(to: &bytes)
        Int32(0).appendBigEndian(to: &bytes)
        elementType.oid.appendBigEndian(to: &bytes)
        if !elements.isEmpty {
            Int32(elements.count).appendBigEndian(to: &bytes)
            Int32(1).appendBigEndian(to: &bytes)
        }
        for element in elements {
            let data = element.encode()
            if let value = data.bytes {
                Int32(value.count).appendBigEndian(to: &bytes)
                bytes.append(contentsOf: value)
            } else {
                Int32(-1).appendBigEndian(to: &bytes)
            }
        }
        return PostgresData(type: postgresArrayType, format: .binary, bytes: bytes)
    }
}

extension PostgresData: PostgresEncodable {
    public static var postgresType: PostgresType { .unspecified }
    public func encode() -> PostgresData { self }
}

extension Int16: PostgresEncodable {
    public static var postgresType: PostgresType { .int2 }
    public static var postgresArrayType: PostgresType { .int2Array }
    public func encode() -> PostgresData {
        var bytes: [UInt8] = []
        appendBigEndian(to: &bytes)
        return PostgresData(type: .int2, format: .binary, bytes: bytes)
    }
}

extension Int32: PostgresEncodable {
    public static var postgresType: PostgresType { .int4 }
    public static var postgresArrayType: PostgresType { .int4Array }
    public func encode() -> PostgresData {
        var bytes: [UInt8] = []
        appendBigEndian(to: &bytes)
        return PostgresData(type: .int4, format: .binary, bytes: bytes)
    }
}

extension Int64: PostgresEncodable {
    public static var postgresType: PostgresType { .int8 }
    public static var postgresArrayType: PostgresType { .int8Array }
    public func encode() -> PostgresData {
        var bytes: [UInt8] = []
        appendBigEndian(to: &bytes)
        return PostgresData(type: .int8, format: .binary, bytes: bytes)
    }
}

/// `Int` is sent as `int8` (it is 64-bit on every platform this runs on).
extension Int: PostgresEncodable {
    public static var postgresType: PostgresType { .int8 }
    public static var postgresArrayType: PostgresType { .int8Array }
    public func encode() -> PostgresData { Int64(self).encode() }
}

extension Double: PostgresEncodable {
    public static var postgresType: PostgresType { .float8 }
    public static var postgresArrayType: PostgresType { .float8Array }
    public func encode() -> PostgresData {
        var bytes: [UInt8] = []
        bitPattern.appendBigEndian(to: &bytes)
        return PostgresData(type: .float8, format: .binary, bytes: bytes)
    }
}

extension Bool: PostgresEncodable {
    public static var postgresType: PostgresType { .bool }
    public static var postgresArrayType: PostgresType { .boolArray }
    public func encode() -> PostgresData { PostgresData(type: .bool, format: .binary, bytes: [self ? 1 : 0]) }
}

/// Strings are sent as `text` in text format: the binary form is the same UTF-8 bytes.
/// A NUL character cannot be stored in PostgreSQL text; the server rejects such a value.
extension String: PostgresEncodable {
    public static var postgresType: PostgresType { .text }
    public static var postgresArrayType: PostgresType { .textArray }
    public func encode() -> PostgresData { PostgresData(type: .text, format: .binary, bytes: Array(utf8)) }
}

/// `[UInt8]` is `bytea`, sent in binary so zero bytes need no escaping.
extension UInt8: PostgresEncodable {
    public static var postgresType: PostgresType { .int2 }
    public func encode() -> PostgresData { Int16(self).encode() }
    public static var postgresArrayType: PostgresType { .bytea }
    public static func encodeArray(_ elements: [UInt8]) -> PostgresData {
        PostgresData(type: .bytea, format: .binary, bytes: elements)
    }
}

extension Data: PostgresEncodable {
    public static var postgresType: PostgresType { .bytea }
    public static var postgresArrayType: PostgresType { .byteaArray }
    public func encode() -> PostgresData { PostgresData(type: .bytea, format: .binary, bytes: Array(self)) }
}

extension UUID: PostgresEncodable {
    public static var postgresType: PostgresType { .uuid }
    public static var postgresArrayType: PostgresType { .uuidArray }
    public func encode() -> PostgresData {
        let u = uuid
        let bytes = [u.0, u.1, u.2, u.3, u.4, u.5, u.6, u.7, u.8, u.9, u.10, u.11, u.12, u.13, u.14, u.15]
        return PostgresData(type: .uuid, format: .binary, bytes: bytes)
    }
}

/// Seconds between the Unix epoch and PostgreSQL's epoch (2000-01-01 00:00:00 UTC).
let postgresEpochOffset: Double = 946_684_800

/// `Date` is sent as `timestamptz`: microseconds since 2000-01-01 UTC.
extension Date: PostgresEncodable {
    /// PostgreSQL's `-infinity` and `infinity` in the binary format.
    static let postgresMinusInfinity = Int64.min
    static let postgresInfinity = Int64.max
    /// The range of finite timestamps PostgreSQL accepts (4713 BC to 294276 AD, `MIN_TIMESTAMP` and
    /// `END_TIMESTAMP` in its datatype/timestamp.h), in microseconds since 2000-01-01. The upper
    /// end, 9,223,371,331,199,999,999, is written as the nearest Double, which it becomes anyway.
    static let postgresFiniteMicros: ClosedRange<Double> = -211_813_488_000_000_000 ... 9_223_371_331_200_000_000

    /// Instants before or after what PostgreSQL can hold become its infinities, which compare as
    /// before or after every other time. Converting them to Int64 trapped (a crash a caller could
    /// provoke with a far-future filter); a finite value past PostgreSQL's range would fail the
    /// statement instead. Callers bound the instants they accept; this keeps the rest total.
    static func postgresMicros(_ micros: Double) -> Int64 {
        if micros.isNaN { return postgresMinusInfinity }
        if micros < postgresFiniteMicros.lowerBound { return postgresMinusInfinity }
        if micros > postgresFiniteMicros.upperBound { return postgresInfinity }
        return Int64(micros)
    }

    public static var postgresType: PostgresType { .timestamptz }
    public static var postgresArrayType: PostgresType { .timestamptzArray }
    public func encode() -> PostgresData {
        let micros = Self.postgresMicros(((timeIntervalSince1970 - postgresEpochOffset) * 1_000_000).rounded())
        var bytes: [UInt8] = []
        micros.appendBigEndian(to: &bytes)
        return PostgresData(type: .timestamptz, format: .binary, bytes: bytes)
    }
}

extension Array: PostgresEncodable where Element: PostgresEncodable {
    public static var postgresType: PostgresType { Element.postgresArrayType }
    public func encode() -> PostgresData { Element.encodeArray(self) }
}

extension Optional: PostgresEncodable where Wrapped: PostgresEncodable {
    public static var postgresType: PostgresType { Wrapped.postgresType }
    public static var postgresArrayType: PostgresType { Wrapped.postgresArrayType }
    public func encode() -> PostgresData {
        switch self {
        case .some(let value): value.encode()
        case .none: .null(Wrapped.postgresType)
        }
    }
}

/// A JSON document sent as `jsonb` (binary format: a version byte, then the text; the server
/// parses and validates it).
public struct PostgresJSON: PostgresEncodable, Hashable {
    public var text: String
    public init(_ text: String) { self.text = text }
    public static var postgresType: PostgresType { .jsonb }
    public static var postgresArrayType: PostgresType { .jsonbArray }
    public func encode() -> PostgresData { PostgresData(type: .jsonb, format: .binary, bytes: [1] + Array(text.utf8)) }
}
