/// Percent-encoding of `grpc-message` as the gRPC HTTP/2 spec requires: bytes of the UTF-8
/// encoding outside printable ASCII (0x20–0x7E), and `%` itself, become `%XX`.
enum PercentEncoding {
    /// Longest encoded `grpc-message` sent. Clients cap the size of a response's metadata
    /// (grpcio: 8 KiB by default) and turn a larger trailer into RESOURCE_EXHAUSTED, losing the
    /// real status: a NOT_FOUND that echoed a 60,000-byte id arrived as RESOURCE_EXHAUSTED
    /// (found by black-box testing).
    static let maxEncodedMessageBytes = 4096

    /// `encode(message)`, cut at a character boundary to fit `maxBytes` with a note of the
    /// original length when it is longer (only the note's start, or nothing, when even that does
    /// not fit).
    static func encodeForTrailer(_ message: String, maxBytes: Int = maxEncodedMessageBytes) -> String {
        let encoded = encode(message)
        guard encoded.utf8.count > maxBytes else { return encoded }
        let note = " … (message truncated: \(message.utf8.count) bytes)"
        let encodedNote = encode(note)
        if encodedNote.utf8.count >= maxBytes { return "" }
        let budget = maxBytes - encodedNote.utf8.count
        var kept = ""
        var used = 0
        for character in message {
            let size = encode(String(character)).utf8.count
            if used + size > budget { break }
            kept.append(character)
            used += size
        }
        return encode(kept + note)
    }

    static func encode(_ message: String) -> String {
        var needsEncoding = false
        for byte in message.utf8 where byte < 0x20 || byte > 0x7E || byte == UInt8(ascii: "%") {
            needsEncoding = true
            break
        }
        if !needsEncoding { return message }
        let hex = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(message.utf8.count * 3)
        for byte in message.utf8 {
            if byte < 0x20 || byte > 0x7E || byte == UInt8(ascii: "%") {
                out.append(UInt8(ascii: "%"))
                out.append(hex[Int(byte >> 4)])
                out.append(hex[Int(byte & 0xF)])
            } else {
                out.append(byte)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Decodes `%XX` sequences; a malformed sequence is kept literally (the spec asks receivers to
    /// be lenient), and invalid UTF-8 is replaced rather than rejected.
    static func decode(_ value: some StringProtocol) -> String {
        let bytes = Array(value.utf8)
        guard bytes.contains(UInt8(ascii: "%")) else { return String(value) }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var index = 0
        while index < bytes.count {
            if bytes[index] == UInt8(ascii: "%"), index + 2 < bytes.count,
                let high = hexValue(bytes[index + 1]), let low = hexValue(bytes[index + 2])
            {
                out.append(high << 4 | low)
                index += 3
            } else {
                out.append(bytes[index])
                index += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
