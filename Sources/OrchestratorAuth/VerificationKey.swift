/// One key a token may be verified with, and the one algorithm it is for.
public struct VerificationKey: Sendable {
    enum Material: Sendable {
        case hmac([UInt8])
        case publicKey(EVPKey)
    }

    /// Shortest HS256 secret accepted: RFC 7518 §3.2 asks for a key at least as long as the hash.
    public static let minimumSecretBytes = 32

    /// The `kid` it is published under; nil matches tokens without a `kid`, and tokens with one
    /// when it is the only key of its algorithm.
    public let keyID: String?
    public let algorithm: JWSAlgorithm
    let material: Material

    /// An HS256 key from a shared secret.
    public static func hmac(secret: [UInt8], keyID: String? = nil, source: String = "secret") throws(AuthError) -> VerificationKey {
        guard secret.count >= minimumSecretBytes else {
            throw AuthError(.invalidKey, "\(source): an HS256 secret must be at least \(minimumSecretBytes) bytes, got \(secret.count)")
        }
        return VerificationKey(keyID: keyID, algorithm: .hs256, material: .hmac(secret))
    }

    /// An RS256 or ES256 key from a PEM public key; the key's type decides which.
    public static func publicKey(pem: [UInt8], keyID: String? = nil, source: String = "public key") throws(AuthError) -> VerificationKey {
        let key = try EVPKey.publicKey(pem: pem, source: source)
        return VerificationKey(keyID: keyID, algorithm: key.kind.algorithm, material: .publicKey(key))
    }

    static func publicKey(der: [UInt8], keyID: String?, source: String) throws(AuthError) -> VerificationKey {
        let key = try EVPKey.publicKey(der: der, source: source)
        return VerificationKey(keyID: keyID, algorithm: key.kind.algorithm, material: .publicKey(key))
    }

    /// Whether `signature` over `input` is valid for this key (the caller checked the algorithm).
    func verifies(_ input: [UInt8], signature: [UInt8]) -> Bool {
        switch material {
        case .hmac(let secret):
            return HMACSHA256.isValid(tag: signature, key: secret, data: input)
        case .publicKey(let key):
            if algorithm == .es256 {
                // JOSE sends r || s; OpenSSL verifies DER.
                guard let der = DER.ecdsaSignature(raw: signature) else { return false }
                return key.verify(input, signature: der)
            }
            return key.verify(input, signature: signature)
        }
    }
}
