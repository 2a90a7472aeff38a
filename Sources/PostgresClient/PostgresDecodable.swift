import Foundation

/// One field of a result row, handed to a decoder.
public struct PostgresCell: Sendable {
    public var data: PostgresData
    /// The column's name (or `[index]` for array elements), for error messages.
    public var columnName: String

    public init(data: PostgresData, columnName: String) {
        self.data = data
        self.columnName = columnName
    }

    public var type: PostgresType { data.type }

    /// The error to throw when the column's type is not one this Swift type decodes.
    public func typeMismatch<T>(_: T.Type) -> PostgresError {
        .client(.decoding, "column \(columnName) of type \(type) cannot be decoded as \(T.self)")
    }

    func malformed<T>(_: T.Type) -> PostgresError {
        .client(.decoding, "column \(columnName): malformed \(data.format) \(type) value for \(T.self)")
    }

    /// The value's bytes as UTF-8 text (for text-format results).
    var text: String? { data.bytes.map { String(decoding: $0, as: UTF8.self) } }
}

/// A Swift type that a result column decodes into.
///
/// Decoders accept binary values (what `query` asks for) and, where cheap, text values (what the
/// simple-query protocol returns). A SQL NULL decodes only into an `Optional`.
public protocol PostgresDecodable: Sendable {
    /// Decodes a non-NULL value.
    static func decode(from cell: PostgresCell, bytes: [UInt8]) throws -> Self
    /// What a SQL NULL decodes to; throws unless `Self` is an `Optional`.
    static func decodeNull(from cell: PostgresCell) throws -> Self
    /// How an array column decodes into `[Self]`; the default reads a PostgreSQL array, `UInt8`
    /// overrides it so `[UInt8]` reads `bytea`.
    static func decodeArray(from cell: PostgresCell, bytes: [UInt8]) throws -> [Self]
}

extension PostgresDecodable {
    public static func decodeNull(from cell: PostgresCell) throws -> Self {
        throw PostgresError.client(.decoding, "column \(cell.columnName) is NULL; decode it as \(Self.self)?")
    }

    public static func decodeArray(from cell: PostgresCell, bytes: [UInt8]) throws -> [Self] {
        guard cell.data.format == .binary else { throw cell.typeMismatch([Self].self) }
        var reader = ByteReader(bytes)
        guard let dimensions = reader.read(Int32.self), reader.read(Int32.self) != nil,
            let elementOID = reader.read(UInt32.self)
        else { throw cell.malformed([Self].self) }
        if dimensions == 0 { return [] }
        guard dimensions == 1, let count = reader.read(Int32.self), reader.read(Int32.self) != nil, count >= 0 else {
            throw PostgresError.client(.decoding, "column \(cell.columnName): only one-dimensional arrays decode")
        }
        var elements: [Self] = []
        elements.reserveCapacity(Int(count))
        for index in 0..<Int(count) {
            guard let length = reader.read(Int32.self) else { throw cell.malformed([Self].self) }
            let element = PostgresCell(
                data: PostgresData(type: PostgresType(oid: elementOID), format: .binary, bytes: nil),
                columnName: "\(cell.columnName)[\(index + 1)]")
            if length < 0 {
                elements.append(try decodeNull(from: element))
            } else {
                guard let value = reader.readBytes(Int(length)) else { throw cell.malformed([Self].self) }
                var filled = element
                filled.data.bytes = value
                elements.append(try decode(from: filled, bytes: value))
            }
        }
        return elements
    }
}

extension Optional: PostgresDecodable where Wrapped: PostgresDecodable {
    public static func decode(from cell: PostgresCell, bytes: [UInt8]) throws -> Wrapped? {
        try Wrapped.decode(from: cell, bytes: bytes)
    }
    public static func decodeNull(from cell: PostgresCell) throws -> Wrapped? { nil }
}

extension Array: PostgresDecodable where Element: PostgresDecodable {
    public static func decode(from cell: PostgresCell, bytes: [UInt8]) throws -> [Element] {
        try Element.decodeArray(from: cell, bytes: bytes)
    }
}

// MARK: - Integers

private func decodeInteger<T: FixedWidthInteger>(_: T.Type, cell: PostgresCell, bytes: [UInt8]) throws -> T {
    if cell.data.format == .text {
        guard let text = cell.text, let value = T(text) else { throw cell.malformed(T.self) }
        return value
    }
    var reader = ByteReader(bytes)
    let wide: Int64?
    switch cell.type {
    case .int2: wide = reader.read(Int16.self).map(Int64.init)
    case .int4: wide = reader.read(Int32.self).map(Int64.init)
    case .int8: wide = reader.read(Int64.self)
    case .oidType: wide = reader.read(UInt32.self).map(Int64.init)
    default: throw cell.typeMismatch(T.self)
    }
    guard let wide else { throw cell.malformed(T.self) }
    guard let value = T(exactly: wide) else {
        throw PostgresError.client(.decoding, "column \(cell.columnName): \(wide) does not fit in \(T.self)")
    }
    return value
}

extension Int16: PostgresDecodable {
    public static func decode(from cell: PostgresCell, bytes: [UInt8]) throws -> Int16 {
        try decodeInteger(Int16.self, cell: cell, bytes: bytes)
    }
}

extension Int32: PostgresDecodable {
    public static func decode(from cell: PostgresCell, bytes: [UInt8]) throws -> Int32 {
        try decodeInteger(Int32.self, cell: cell, bytes: bytes)
    }
}

extension Int64: PostgresDecodable {
    public static func decode(from cell: PostgresCell, bytes: [UInt8]) throws -> Int64 {
        try decodeInteger(Int64.self, cell: cell, bytes: bytes)
    }
}

extension Int: PostgresDecodable {
    public static func decode(from cell: PostgresCell, bytes: [UInt8]) throws -> Int {
        try decodeInteger(Int.self, cell: cell, bytes: bytes)
    }
}

// MARK: - Floating point, booleans

extension Double: PostgresDecodable {
    public static func decode(from cell: PostgresCell, bytes: [UInt8]) throws -> Double {
        if cell.data.format == .text {
            guard let text = cell.text, let value = Double(text) else { throw cell.malformed(Double.self) }
            return value
        }
        var reader = ByteReader(bytes)
        switch cell.type {
        case .float8:
            guard let bits = reader.read(UInt64.self) else { throw cell.malformed(Double.self) }
            return Double(bitPattern: bits)
        case .float4:
            guard let bits = reader.read(UInt32.self) else { throw cell.malformed(Double.self) }
            return Double(Float(bitPattern: bits))
        case .numeric:
            guard let value = decodeNumeric(bytes) else { throw cell.malformed(Double.self) }
            return value
        case .int2, .int4, .int8:
            return Double(try decodeInteger(Int64.self, cell: cell, bytes: bytes))
        default:
            throw cell.typeMismatch(Double.self)
        }
    }

    /// Binary numeric: digit count, weight, sign, display scale, then base-10000 digits.
    private static func decodeNumeric(_ bytes: [UInt8]) -> Double? {
        var reader = ByteReader(bytes)
        guard let count = reader.read(Int16.self), let weight = reader.read(Int16.self),
            let sign = reader.read(UInt16.self), reader.read(Int16.self) != nil
        else { return nil }
        switch sign {
        case 0xC000: return .nan
        case 0xD000: return .infinity
        case 0xF000: return -.infinity
        default: break
        }
        var value = 0.0
        for index in 0..<Int(count) {
            guard let digit = reader.read(Int16.self) else { return nil }
            value += Double(digit) * pow(10_000.0, Double(Int(weight) - index))
        }
        return sign == 0x4000 ? -value : value
    }
}

extension Bool: PostgresDecodable {
    public static func decode(from cell: PostgresCell, bytes: [UInt8]) throws -> Bool {
        if cell.data.format == .text {
            switch cell.text {
            case "t": return true
            case "f": return false
            default: throw cell.malformed(Bool.self)
            }
        }
        guard cell.type == .bool else { throw cell.typeMismatch(Bool.self) }
        guard bytes.count == 1 else { throw cell.malformed(Bool.self) }
        return bytes[0] != 0
    }
}

// MARK: - Text, JSON, UUID

/// Strings decode text-like columns, `json`/`jsonb` (the document's text) and `uuid` (its
/// canonical lower-case form). In text-format results every column decodes as a String.
extension String: PostgresDecodable {
    public static func decode(from cell: PostgresCell, bytes: [UInt8]) throws -> String {
        if cell.data.format == .text || cell.type.isTextLike {
            return String(decoding: bytes, as: UTF8.self)
        }
        switch cell.type {
        case .jsonb:
            guard bytes.first == 1 else { throw cell.malformed(String.self) }
            return String(decoding: bytes.dropFirst(), as: UTF8.self)
        case .uuid:
            return try UUID.decode(from: cell, bytes: bytes).uuidString.lowercased()
        default:
            throw cell.typeMismatch(String.self)
        }
    }
}

extension UUID: PostgresDecodable {
    public static func decode(from cell: PostgresCell, bytes: [UInt8]) throws -> UUID {
        if cell.data.format == .text {
            guard let text = cell.text, let value = UUID(uuidString: text) else { throw cell.malformed(UUID.self) }
            return value
        }
        guard cell.type == .uuid else { throw cell.typeMismatch(UUID.self) }
        guard bytes.count == 16 else { throw cell.malformed(UUID.self) }
        let b = bytes
        return UUID(uuid: (b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]))
    }
}

// MARK: - Bytes

extension UInt8: PostgresDecodable {
    public static func decode(from cell: PostgresCell, bytes: [UInt8]) throws -> UInt8 {
        let wide = try decodeInteger(Int64.self, cell: cell, bytes: bytes)
        guard let value = UInt8(exactly: wide) else { throw cell.malformed(UInt8.self) }
        return value
    }

    /// `[UInt8]` decodes `bytea` (binary, or the `\x` hex text form).
    public static func decodeArray(from cell: PostgresCell, bytes: [UInt8]) throws -> [UInt8] {
        if cell.data.format == .text { return try decodeHexBytea(cell: cell, bytes: bytes) }
        guard cell.type == .bytea else { throw cell.typeMismatch([UInt8].self) }
        return bytes
    }

    private static func decodeHexBytea(cell: PostgresCell, bytes: [UInt8]) throws -> [UInt8] {
        guard bytes.count >= 2, bytes[0] == UInt8(ascii: "\\"), bytes[1] == UInt8(ascii: "x"), bytes.count % 2 == 0 else {
            throw cell.malformed([UInt8].self)
        }
        func nibble(_ c: UInt8) -> UInt8? {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
            default: nil
            }
        }
        var result: [UInt8] = []
        result.reserveCapacity(bytes.count / 2 - 1)
        var index = 2
        while index < bytes.count {
            guard let high = nibble(bytes[index]), let low = nibble(bytes[index + 1]) else { throw cell.malformed([UInt8].self) }
            result.append(high << 4 | low)
            index += 2
        }
        return result
    }
}

extension Data: PostgresDecodable {
    public static func decode(from cell: PostgresCell, bytes: [UInt8]) throws -> Data {
        Data(try UInt8.decodeArray(from: cell, bytes: bytes))
    }
}

// MARK: - Time

/// `Date` decodes `timestamptz`, `timestamp` (taken as UTC) and `date` (midnight UTC).
extension Date: PostgresDecodable {
    public static func decode(from cell: PostgresCell, bytes: [UInt8]) throws -> Date {
        guard cell.data.format == .binary else { throw cell.typeMismatch(Date.self) }
        var reader = ByteReader(bytes)
        switch cell.type {
        case .timestamptz, .timestamp:
            guard let micros = reader.read(Int64.self) else { throw cell.malformed(Date.self) }
            return Date(timeIntervalSince1970: postgresEpochOffset + Double(micros) / 1_000_000)
        case .date:
            guard let days = reader.read(Int32.self) else { throw cell.malformed(Date.self) }
            return Date(timeIntervalSince1970: postgresEpochOffset + Double(days) * 86_400)
        default:
            throw cell.typeMismatch(Date.self)
        }
    }
}

/// A JSON column's text (`json` or `jsonb`).
extension PostgresJSON: PostgresDecodable {
    public static func decode(from cell: PostgresCell, bytes: [UInt8]) throws -> PostgresJSON {
        guard cell.type == .json || cell.type == .jsonb || cell.data.format == .text else {
            throw cell.typeMismatch(PostgresJSON.self)
        }
        return PostgresJSON(try String.decode(from: cell, bytes: bytes))
    }
}
