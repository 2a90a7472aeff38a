private import CLibevent

/// HMAC-SHA256 with OpenSSL, and a constant-time comparison for checking tags.
enum HMACSHA256 {
    static func mac(key: [UInt8], data: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        key.withUnsafeBufferPointer { key in
            data.withUnsafeBufferPointer { data in
                out.withUnsafeMutableBufferPointer { out in
                    _ = HMAC(EVP_sha256(), key.baseAddress, Int32(key.count), data.baseAddress, data.count, out.baseAddress, &length)
                }
            }
        }
        return out
    }

    /// True when `tag` is the HMAC of `data`; the comparison takes the same time wherever the
    /// first difference is, so response timing leaks nothing about the expected tag.
    static func isValid(tag: [UInt8], key: [UInt8], data: [UInt8]) -> Bool {
        let expected = mac(key: key, data: data)
        guard tag.count == expected.count else { return false }
        return expected.withUnsafeBytes { a in tag.withUnsafeBytes { b in CRYPTO_memcmp(a.baseAddress, b.baseAddress, a.count) == 0 } }
    }
}
