/// Reads structured choices off the front of a fuzzer's input, like LLVM's FuzzedDataProvider: a
/// target takes a few bytes to pick a mode, a limit or a split pattern, then the rest as data.
/// Reading past the end yields zeros, so every input is usable and the fuzzer can shrink freely.
public struct FuzzInput {
    private var bytes: ArraySlice<UInt8>

    public init(_ bytes: [UInt8]) { self.bytes = bytes[...] }

    public var isEmpty: Bool { bytes.isEmpty }
    public var count: Int { bytes.count }

    /// The next byte, or 0 when none is left.
    public mutating func byte() -> UInt8 {
        bytes.popFirst() ?? 0
    }

    /// One of `choices`, picked by the next byte.
    public mutating func pick<T>(_ choices: [T]) -> T {
        choices[Int(byte()) % choices.count]
    }

    /// The next 8 bytes as a little-endian integer (missing bytes read as 0).
    public mutating func int64() -> Int64 {
        var value: UInt64 = 0
        for shift in stride(from: 0, to: 64, by: 8) { value |= UInt64(byte()) << UInt64(shift) }
        return Int64(bitPattern: value)
    }

    /// The next 4 bytes as a little-endian integer.
    public mutating func int32() -> Int32 {
        var value: UInt32 = 0
        for shift in stride(from: 0, to: 32, by: 8) { value |= UInt32(byte()) << UInt32(shift) }
        return Int32(bitPattern: value)
    }

    /// The next 8 bytes as an IEEE double (NaN, infinities and subnormals included).
    public mutating func double() -> Double {
        Double(bitPattern: UInt64(bitPattern: int64()))
    }

    /// A string of up to `maxLength` bytes (length from the next byte): invalid UTF-8 becomes
    /// U+FFFD, as in any Swift String, and NUL bytes are dropped, as no protobuf string can carry
    /// one (protobuf-c strings are C strings).
    public mutating func string(maxLength: Int) -> String {
        let length = Int(byte()) % (maxLength + 1)
        return String(decoding: take(length).filter { $0 != 0 }, as: UTF8.self)
    }

    /// Up to `count` bytes.
    public mutating func take(_ count: Int) -> [UInt8] {
        let taken = bytes.prefix(count)
        bytes = bytes.dropFirst(taken.count)
        return Array(taken)
    }

    /// Everything left.
    public mutating func rest() -> [UInt8] {
        defer { bytes = [] }
        return Array(bytes)
    }
}
