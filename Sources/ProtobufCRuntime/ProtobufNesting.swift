/// Bounds how deeply sub-messages nest before protobuf-c sees the bytes.
///
/// protobuf-c unpacks sub-messages recursively with no limit, so a message type that can contain
/// itself (directly, through a list, or through other messages) lets a few hundred kilobytes of
/// input overflow the stack. Generated decoders of such types call `check` first; it walks only
/// the fields the schema says hold sub-messages, iteratively in bytes and recursively at most
/// `limit` levels deep.
public enum ProtobufNesting {
    /// The default limit, the same as the official runtimes' recursion limit.
    public static let defaultLimit = 100

    /// Throws when `bytes` nest sub-messages more than `limit` levels deep, or cannot be walked.
    /// - Parameters:
    ///   - schema: one entry per message type reachable from the root (index 0): field number of
    ///     each sub-message field → index of that field's type.
    public static func check(_ bytes: [UInt8], schema: [[UInt32: Int]], limit: Int = defaultLimit) throws(ProtobufCError) {
        try bytes.withUnsafeBufferPointer { (buffer) throws(ProtobufCError) in
            try walk(buffer, start: 0, end: buffer.count, node: 0, depth: 0, schema: schema, limit: limit)
        }
    }

    private static func walk(
        _ buffer: UnsafeBufferPointer<UInt8>, start: Int, end: Int, node: Int, depth: Int,
        schema: [[UInt32: Int]], limit: Int
    ) throws(ProtobufCError) {
        var position = start
        while position < end {
            let tag = try varint(buffer, &position, end)
            let field = tag >> 3
            switch tag & 7 {
            case 0:
                _ = try varint(buffer, &position, end)
            case 1:
                position += 8
            case 5:
                position += 4
            case 2:
                let length = try varint(buffer, &position, end)
                guard length <= UInt64(end - position) else { throw malformed("length past the end") }
                let next = position + Int(length)
                if let child = schema[node][UInt32(truncatingIfNeeded: field)] {
                    guard depth < limit else {
                        throw ProtobufCError(.malformed, "sub-messages nest more than \(limit) levels deep")
                    }
                    try walk(buffer, start: position, end: next, node: child, depth: depth + 1, schema: schema, limit: limit)
                }
                position = next
            default:
                // Groups (3, 4) are proto2-only; 6 and 7 do not exist.
                throw malformed("unsupported wire type \(tag & 7)")
            }
            guard position <= end else { throw malformed("field past the end") }
        }
    }

    private static func varint(_ buffer: UnsafeBufferPointer<UInt8>, _ position: inout Int, _ end: Int) throws(ProtobufCError) -> UInt64 {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while position < end, shift < 64 {
            let byte = buffer[position]
            position += 1
            value |= UInt64(byte & 0x7F) << shift
            if byte < 0x80 { return value }
            shift += 7
        }
        throw malformed("truncated or overlong varint")
    }

    private static func malformed(_ message: String) -> ProtobufCError {
        ProtobufCError(.malformed, message)
    }
}
