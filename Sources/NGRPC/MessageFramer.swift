/// gRPC length-prefixed message framing: one flag byte (1 = compressed) and a 4-byte big-endian
/// length, then the message bytes.
enum MessageFramer {
    static let headerSize = 5

    /// Returns `message` with its 5-byte prefix, in one allocation.
    static func frame(_ message: [UInt8], compressed: Bool = false) -> [UInt8] {
        let length = message.count
        return [UInt8](unsafeUninitializedCapacity: length + headerSize) { buffer, initialized in
            buffer[0] = compressed ? 1 : 0
            buffer[1] = UInt8(truncatingIfNeeded: length >> 24)
            buffer[2] = UInt8(truncatingIfNeeded: length >> 16)
            buffer[3] = UInt8(truncatingIfNeeded: length >> 8)
            buffer[4] = UInt8(truncatingIfNeeded: length)
            if length > 0 {
                message.withUnsafeBufferPointer { source in
                    UnsafeMutableBufferPointer(rebasing: buffer[headerSize...]).baseAddress!
                        .update(from: source.baseAddress!, count: length)
                }
            }
            initialized = length + headerSize
        }
    }
}
