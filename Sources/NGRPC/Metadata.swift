/// Request or response metadata: an ordered multimap of lower-case keys to values.
///
/// Keys ending in `-bin` carry binary values, base64-encoded on the wire; all other keys carry
/// printable ASCII strings. Reserved keys (`:path`, `content-type`, `te`, `grpc-*` the transport
/// owns) never appear here.
public struct Metadata: Sendable, Hashable, Sequence {
    public enum Value: Sendable, Hashable {
        case string(String)
        case binary([UInt8])
    }

    public private(set) var entries: [(key: String, value: Value)] = []

    public init() {}

    public init(_ pairs: [(String, String)]) {
        for (key, value) in pairs { add(key, value) }
    }

    /// Appends a string value. The key is lower-cased.
    public mutating func add(_ key: String, _ value: String) {
        entries.append((key.lowercased(), .string(value)))
    }

    /// Appends a binary value; the key should end in `-bin`.
    public mutating func add(_ key: String, binary value: [UInt8]) {
        entries.append((key.lowercased(), .binary(value)))
    }

    public mutating func add(_ key: String, value: Value) {
        entries.append((key.lowercased(), value))
    }

    /// Appends under a key already known to be lower case (a received HTTP/2 header name:
    /// nghttp2 refuses upper-case ones), without lower-casing it again.
    mutating func appendLowercased(_ key: String, _ value: Value) {
        entries.append((key, value))
    }

    /// Replaces every value of `key` with `value`.
    public mutating func set(_ key: String, _ value: String) {
        remove(key)
        add(key, value)
    }

    public mutating func remove(_ key: String) {
        let key = key.lowercased()
        entries.removeAll { $0.key == key }
    }

    /// The first string value of `key`, if any.
    public subscript(_ key: String) -> String? {
        let key = key.lowercased()
        for entry in entries where entry.key == key {
            if case .string(let value) = entry.value { return value }
        }
        return nil
    }

    /// The first binary value of `key`, if any.
    public func binary(_ key: String) -> [UInt8]? {
        let key = key.lowercased()
        for entry in entries where entry.key == key {
            if case .binary(let value) = entry.value { return value }
        }
        return nil
    }

    /// Every value of `key`, in order.
    public func values(_ key: String) -> [Value] {
        let key = key.lowercased()
        return entries.filter { $0.key == key }.map(\.value)
    }

    public var isEmpty: Bool { entries.isEmpty }
    public var count: Int { entries.count }

    public func makeIterator() -> IndexingIterator<[(key: String, value: Value)]> {
        entries.makeIterator()
    }

    public static func == (lhs: Metadata, rhs: Metadata) -> Bool {
        lhs.entries.count == rhs.entries.count
            && zip(lhs.entries, rhs.entries).allSatisfy { $0.key == $1.key && $0.value == $1.value }
    }

    public func hash(into hasher: inout Hasher) {
        for entry in entries {
            hasher.combine(entry.key)
            hasher.combine(entry.value)
        }
    }
}
