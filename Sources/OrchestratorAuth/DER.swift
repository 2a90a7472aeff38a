/// The little DER that JOSE needs: ECDSA signatures between JOSE's raw `r || s` and OpenSSL's
/// `ECDSA-Sig-Value`, and SubjectPublicKeyInfo built from a JWK's RSA or EC parameters.
enum DER {
    // MARK: ECDSA signatures

    /// JOSE ES256 `r || s` (32 + 32 bytes) → DER `SEQUENCE { INTEGER r, INTEGER s }`.
    static func ecdsaSignature(raw: [UInt8]) -> [UInt8]? {
        guard raw.count == 64 else { return nil }
        return sequence(integer(Array(raw[0..<32])) + integer(Array(raw[32..<64])))
    }

    /// DER `ECDSA-Sig-Value` → JOSE `r || s`, each left-padded to 32 bytes.
    static func rawSignature(der: [UInt8]) -> [UInt8]? {
        var reader = Reader(der)
        guard let body = reader.element(tag: 0x30), reader.isAtEnd else { return nil }
        var inner = Reader(body)
        guard let r = inner.element(tag: 0x02), let s = inner.element(tag: 0x02), inner.isAtEnd,
            let r32 = fixed(r, 32), let s32 = fixed(s, 32)
        else { return nil }
        return r32 + s32
    }

    /// An unsigned big-endian integer without leading zeros, as exactly `width` bytes.
    static func fixed(_ integer: [UInt8], _ width: Int) -> [UInt8]? {
        let trimmed = Array(integer.drop { $0 == 0 })
        guard trimmed.count <= width else { return nil }
        return [UInt8](repeating: 0, count: width - trimmed.count) + trimmed
    }

    // MARK: Public keys from JWK parameters

    /// SubjectPublicKeyInfo of an RSA key: `SEQUENCE { AlgorithmIdentifier rsaEncryption, BIT STRING RSAPublicKey }`.
    static func rsaPublicKey(modulus: [UInt8], exponent: [UInt8]) -> [UInt8] {
        let rsaEncryption: [UInt8] = [0x30, 0x0D, 0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x01, 0x05, 0x00]
        let rsaPublicKey = sequence(integer(modulus) + integer(exponent))
        return sequence(rsaEncryption + element(0x03, [0x00] + rsaPublicKey))
    }

    /// SubjectPublicKeyInfo of a P-256 key from its affine coordinates (32 bytes each).
    static func p256PublicKey(x: [UInt8], y: [UInt8]) -> [UInt8]? {
        guard x.count == 32, y.count == 32 else { return nil }
        // SEQUENCE { SEQUENCE { id-ecPublicKey, prime256v1 }, BIT STRING 04 || x || y }
        let prefix: [UInt8] = [
            0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01,
            0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00, 0x04,
        ]
        return prefix + x + y
    }

    // MARK: Encoding

    static func integer(_ magnitude: [UInt8]) -> [UInt8] {
        var bytes = Array(magnitude.drop { $0 == 0 })
        if bytes.isEmpty { bytes = [0] }
        if bytes[0] & 0x80 != 0 { bytes.insert(0, at: 0) }
        return element(0x02, bytes)
    }

    static func sequence(_ content: [UInt8]) -> [UInt8] { element(0x30, content) }

    static func element(_ tag: UInt8, _ content: [UInt8]) -> [UInt8] {
        [tag] + length(content.count) + content
    }

    static func length(_ count: Int) -> [UInt8] {
        if count < 0x80 { return [UInt8(count)] }
        var bytes: [UInt8] = []
        var rest = count
        while rest > 0 {
            bytes.insert(UInt8(rest & 0xFF), at: 0)
            rest >>= 8
        }
        return [0x80 | UInt8(bytes.count)] + bytes
    }

    /// Reads definite-length DER elements.
    struct Reader {
        let bytes: [UInt8]
        var index = 0

        init(_ bytes: [UInt8]) { self.bytes = bytes }

        var isAtEnd: Bool { index == bytes.count }

        mutating func element(tag: UInt8) -> [UInt8]? {
            guard index + 2 <= bytes.count, bytes[index] == tag else { return nil }
            var length = Int(bytes[index + 1])
            var cursor = index + 2
            if length & 0x80 != 0 {
                let count = length & 0x7F
                guard (1...2).contains(count), cursor + count <= bytes.count else { return nil }
                length = 0
                for byte in bytes[cursor..<cursor + count] { length = length << 8 | Int(byte) }
                cursor += count
            }
            guard cursor + length <= bytes.count else { return nil }
            index = cursor + length
            return Array(bytes[cursor..<cursor + length])
        }
    }
}
