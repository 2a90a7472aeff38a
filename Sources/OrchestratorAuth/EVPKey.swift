private import CLibevent

/// One OpenSSL `EVP_PKEY` (an RSA key, or an EC key on P-256), public or private.
///
/// Owns the handle and frees it in `deinit`. After loading, the key is only read: OpenSSL allows
/// concurrent verifications and signatures with one `EVP_PKEY` as long as each uses its own
/// `EVP_MD_CTX`, which every method here creates and frees itself — hence `@unchecked Sendable`
/// with no mutable field.
final class EVPKey: @unchecked Sendable {
    enum Kind: Sendable, Hashable {
        case rsa
        case ecP256

        var algorithm: JWSAlgorithm { self == .rsa ? .rs256 : .es256 }
    }

    /// Smallest RSA modulus accepted, in bits (NIST SP 800-131A).
    static let minimumRSABits: Int32 = 2048

    private let handle: OpaquePointer
    let kind: Kind
    let isPrivate: Bool

    private init(handle: OpaquePointer, isPrivate: Bool, source: String) throws(AuthError) {
        self.handle = handle
        self.isPrivate = isPrivate
        switch EVP_PKEY_get_base_id(handle) {
        case EVP_PKEY_RSA:
            guard EVP_PKEY_get_bits(handle) >= Self.minimumRSABits else {
                let bits = EVP_PKEY_get_bits(handle)
                EVP_PKEY_free(handle)
                throw AuthError(.invalidKey, "\(source): RSA key of \(bits) bits is too small (at least \(Self.minimumRSABits))")
            }
            if let problem = Self.rsaExponentProblem(handle) {
                EVP_PKEY_free(handle)
                throw AuthError(.invalidKey, "\(source): \(problem)")
            }
            kind = .rsa
        case EVP_PKEY_EC:
            var name = [CChar](repeating: 0, count: 64)
            var length = 0
            let named = EVP_PKEY_get_group_name(handle, &name, name.count, &length) == 1
            let group = named ? String(decoding: name.prefix(length).map { UInt8(bitPattern: $0) }, as: UTF8.self) : "?"
            guard ["prime256v1", "P-256", "secp256r1"].contains(group) else {
                EVP_PKEY_free(handle)
                throw AuthError(.invalidKey, "\(source): EC key on curve \(group); ES256 needs P-256 (prime256v1)")
            }
            kind = .ecP256
        default:
            EVP_PKEY_free(handle)
            throw AuthError(.invalidKey, "\(source): only RSA and EC P-256 keys are supported")
        }
        ERR_clear_error()
    }

    deinit { EVP_PKEY_free(handle) }

    /// Why an RSA key's public exponent is unusable, if it is. With e = 1 a signature is its own
    /// message representative, so anyone could forge tokens (found by black-box testing); NIST
    /// SP 800-56B wants an odd e of at least 65537.
    private static func rsaExponentProblem(_ handle: OpaquePointer) -> String? {
        var exponent: OpaquePointer?
        guard EVP_PKEY_get_bn_param(handle, "e", &exponent) == 1, let exponent else {
            return "cannot read the RSA public exponent (\(takeOpenSSLError()))"
        }
        defer { BN_free(exponent) }
        // BN_get_word saturates at the largest word for bigger numbers: those are large enough.
        let value = BN_get_word(exponent)
        guard BN_is_odd(exponent) == 1, value >= 65537 else {
            return "RSA public exponent \(value) is unsafe (an odd exponent of at least 65537 is required)"
        }
        return nil
    }

    /// A public key from PEM (`-----BEGIN PUBLIC KEY-----`, SubjectPublicKeyInfo).
    static func publicKey(pem: [UInt8], source: String) throws(AuthError) -> EVPKey {
        let handle = withBIO(pem) { bio in PEM_read_bio_PUBKEY(bio, nil, nil, nil) }
        guard let handle else {
            throw AuthError(.invalidKey, "\(source): not a PEM public key (\(takeOpenSSLError()))")
        }
        return try EVPKey(handle: handle, isPrivate: false, source: source)
    }

    /// A private key from PEM (PKCS#8, or traditional RSA/EC). Encrypted keys are refused
    /// instead of prompting for a passphrase on the terminal.
    static func privateKey(pem: [UInt8], source: String) throws(AuthError) -> EVPKey {
        let handle = withBIO(pem) { bio in PEM_read_bio_PrivateKey(bio, nil, { _, _, _, _ in 0 }, nil) }
        guard let handle else {
            throw AuthError(.invalidKey, "\(source): not an unencrypted PEM private key (\(takeOpenSSLError()))")
        }
        return try EVPKey(handle: handle, isPrivate: true, source: source)
    }

    /// A public key from DER SubjectPublicKeyInfo (built from a JWK).
    static func publicKey(der: [UInt8], source: String) throws(AuthError) -> EVPKey {
        let handle = der.withUnsafeBufferPointer { buffer -> OpaquePointer? in
            var cursor: UnsafePointer<UInt8>? = buffer.baseAddress
            return d2i_PUBKEY(nil, &cursor, buffer.count)
        }
        guard let handle else { throw AuthError(.invalidKey, "\(source): not a valid public key (\(takeOpenSSLError()))") }
        return try EVPKey(handle: handle, isPrivate: false, source: source)
    }

    /// Verifies a SHA-256 signature: PKCS#1 v1.5 for RSA, DER-encoded ECDSA for EC.
    func verify(_ data: [UInt8], signature: [UInt8]) -> Bool {
        guard let context = EVP_MD_CTX_new() else { return false }
        defer {
            EVP_MD_CTX_free(context)
            ERR_clear_error()
        }
        guard EVP_DigestVerifyInit(context, nil, EVP_sha256(), nil, handle) == 1 else { return false }
        let result = data.withUnsafeBufferPointer { message in
            signature.withUnsafeBufferPointer { signature in
                EVP_DigestVerify(context, signature.baseAddress, signature.count, message.baseAddress, message.count)
            }
        }
        return result == 1
    }

    /// Signs with SHA-256: PKCS#1 v1.5 for RSA, DER-encoded ECDSA for EC.
    func sign(_ data: [UInt8]) throws(AuthError) -> [UInt8] {
        guard isPrivate else { throw AuthError(.signingFailed, "a public key cannot sign") }
        guard let context = EVP_MD_CTX_new() else { throw AuthError(.signingFailed, "out of memory") }
        defer {
            EVP_MD_CTX_free(context)
            ERR_clear_error()
        }
        guard EVP_DigestSignInit(context, nil, EVP_sha256(), nil, handle) == 1 else {
            throw AuthError(.signingFailed, "cannot start signing: \(takeOpenSSLError())")
        }
        var length = 0
        let sized = data.withUnsafeBufferPointer { EVP_DigestSign(context, nil, &length, $0.baseAddress, $0.count) }
        guard sized == 1 else { throw AuthError(.signingFailed, "cannot size signature: \(takeOpenSSLError())") }
        var signature = [UInt8](repeating: 0, count: length)
        let signed = data.withUnsafeBufferPointer { message in
            signature.withUnsafeMutableBufferPointer {
                EVP_DigestSign(context, $0.baseAddress, &length, message.baseAddress, message.count)
            }
        }
        guard signed == 1 else { throw AuthError(.signingFailed, "signing failed: \(takeOpenSSLError())") }
        return Array(signature.prefix(length))
    }
}

/// Runs `body` with a read-only memory BIO over `bytes`.
private func withBIO<T>(_ bytes: [UInt8], _ body: (OpaquePointer) -> T?) -> T? {
    bytes.withUnsafeBytes { raw -> T? in
        guard let bio = BIO_new_mem_buf(raw.baseAddress, Int32(raw.count)) else { return nil }
        defer { BIO_free(bio) }
        return body(bio)
    }
}

/// The oldest OpenSSL error on this thread as text, clearing the queue (it is per thread, and a
/// stale entry would confuse the next TLS call made on it).
func takeOpenSSLError() -> String {
    let code = ERR_get_error()
    defer { ERR_clear_error() }
    guard code != 0 else { return "no detail" }
    var buffer = [CChar](repeating: 0, count: 256)
    ERR_error_string_n(code, &buffer, buffer.count)
    return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
