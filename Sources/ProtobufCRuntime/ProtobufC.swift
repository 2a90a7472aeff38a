/// Glue between generated wrappers and protobuf-c's per-message functions.
///
/// The generated code passes the C functions in as closures, so this module needs no knowledge
/// of any message and no C type appears in its API.
public enum ProtobufC {
    /// Unpacks `bytes` with protobuf-c, converts the C tree with `convert`, then frees the tree.
    /// - Throws: `ProtobufCError.malformed` when protobuf-c rejects the bytes, or whatever
    ///   `convert` throws (invalid UTF-8, say).
    @inlinable
    public static func decode<CMessage, Value>(
        _ bytes: [UInt8],
        unpack: (Int, UnsafePointer<UInt8>) -> UnsafeMutablePointer<CMessage>?,
        free: (UnsafeMutablePointer<CMessage>) -> Void,
        convert: (UnsafePointer<CMessage>) throws -> Value
    ) throws -> Value {
        let message: UnsafeMutablePointer<CMessage>? = bytes.withUnsafeBufferPointer { buffer in
            // protobuf-c never reads data for a zero length, but gets a valid pointer regardless.
            var empty: UInt8 = 0
            guard let base = buffer.baseAddress else { return unpack(0, &empty) }
            return unpack(buffer.count, base)
        }
        guard let message else {
            // Worded for the caller who sent the bytes, not for who decodes them.
            let size = bytes.count == 1 ? "1 byte" : "\(bytes.count) bytes"
            throw ProtobufCError(.malformed, "not a protobuf encoding of this message (\(size))")
        }
        defer { free(message) }
        return try convert(message)
    }

    /// Packs a protobuf-c message (given by its `ProtobufCMessage` base) into a new byte array.
    @inlinable
    public static func encode<CMessage>(
        _ message: UnsafePointer<CMessage>,
        size: (UnsafePointer<CMessage>) -> Int,
        pack: (UnsafePointer<CMessage>, UnsafeMutablePointer<UInt8>) -> Int
    ) throws(ProtobufCError) -> [UInt8] {
        let expected = size(message)
        if expected == 0 { return [] }
        var written = 0
        let bytes = [UInt8](unsafeUninitializedCapacity: expected) { buffer, count in
            written = pack(message, buffer.baseAddress!)
            count = min(written, expected)
        }
        if written != expected {
            throw ProtobufCError(.sizeMismatch, "packed \(written) bytes, expected \(expected)")
        }
        return bytes
    }

    /// A proto3 string field: NUL-terminated UTF-8 (NULL reads as ""). `field`, the field's full
    /// name, is what the error names.
    @inlinable
    public static func string(_ pointer: UnsafePointer<CChar>?, field: StaticString = "") throws(ProtobufCError) -> String {
        guard let pointer else { return "" }
        guard let text = String(validatingCString: pointer) else {
            let name = field.utf8CodeUnitCount == 0 ? "a string field" : "field \(field)"
            throw ProtobufCError(.invalidUTF8, "\(name) is not valid UTF-8 (proto3 strings must be)")
        }
        return text
    }

    /// A bytes field (`ProtobufCBinaryData`'s data and len).
    @inlinable
    public static func bytes(_ data: UnsafePointer<UInt8>?, _ count: Int) -> [UInt8] {
        guard let data, count > 0 else { return [] }
        return Array(UnsafeBufferPointer(start: data, count: count))
    }

    /// The elements of a repeated scalar field (`T *` plus `n_` count).
    @inlinable
    public static func array<Element, Value>(
        _ pointer: UnsafePointer<Element>?, _ count: Int, _ transform: (Element) throws -> Value
    ) rethrows -> [Value] {
        guard let pointer, count > 0 else { return [] }
        return try UnsafeBufferPointer(start: pointer, count: count).map(transform)
    }

    /// The elements of a repeated string or message field (`T **` plus `n_` count).
    @inlinable
    public static func pointers<Element, Value>(
        _ pointer: UnsafePointer<UnsafeMutablePointer<Element>?>?, _ count: Int,
        _ transform: (UnsafeMutablePointer<Element>) throws -> Value
    ) throws -> [Value] {
        guard let pointer, count > 0 else { return [] }
        var values: [Value] = []
        values.reserveCapacity(count)
        for element in UnsafeBufferPointer(start: pointer, count: count) {
            guard let element else { throw ProtobufCError(.malformed, "repeated field holds a NULL element") }
            values.append(try transform(element))
        }
        return values
    }
}
