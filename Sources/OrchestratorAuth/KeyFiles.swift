/// Loading verification keys from the files an operator configures.
public enum KeyFiles {
    /// `--jwt-key-file`: a PEM public key (RSA → RS256, EC P-256 → ES256) or an HS256 secret.
    ///
    /// A secret file's bytes are the secret, used as they are (not base64-decoded) except that
    /// trailing line breaks are dropped, so `openssl rand -hex 32 > secret` and an editor's final
    /// newline both work; PyJWT and `orchctl token` read the same file the same way.
    public static func keyFile(_ path: String) throws(AuthError) -> VerificationKey {
        let bytes = try FileBytes.read(path)
        let text = String(decoding: bytes, as: UTF8.self)
        if text.contains("-----BEGIN") {
            if text.contains("PRIVATE KEY-----") {
                throw AuthError(
                    .invalidKey,
                    "\(path) holds a private key; give the server the public key (openssl pkey -in KEY -pubout -out PUBLIC.pem)")
            }
            if text.contains("CERTIFICATE-----") {
                throw AuthError(
                    .invalidKey, "\(path) holds a certificate; give the server the public key (openssl x509 -in CERT -pubkey -noout)")
            }
            return try VerificationKey.publicKey(pem: bytes, source: path)
        }
        if text.drop(while: \.isWhitespace).first == "{" {
            throw AuthError(.invalidKey, "\(path) looks like JSON; a JWKS file goes to --jwks-file")
        }
        return try VerificationKey.hmac(secret: secret(bytes), source: path)
    }

    /// A secret file's content without trailing CR/LF.
    public static func secret(_ bytes: [UInt8]) -> [UInt8] {
        var secret = bytes
        while let last = secret.last, last == 0x0A || last == 0x0D { secret.removeLast() }
        return secret
    }

    /// `--jwks-file`: a JSON Web Key Set (RFC 7517), `{"keys": [...]}`.
    public static func jwksFile(_ path: String) throws(AuthError) -> [VerificationKey] {
        try JWKSet.parse(try FileBytes.read(path), source: path)
    }
}

/// Parses a JWKS: `kty` `oct` (HS256, `k`), `RSA` (RS256, `n`, `e`) or `EC` (ES256, `crv` P-256,
/// `x`, `y`). `alg`, when present, must be the one the key type implies; keys with `use` other than
/// `sig` are refused. Private members (`d`, …) are ignored.
enum JWKSet {
    static func parse(_ bytes: [UInt8], source: String) throws(AuthError) -> [VerificationKey] {
        let document: JSONValue
        do {
            document = try StrictJSONParser.parse(bytes)
        } catch {
            throw AuthError(.invalidKey, "\(source) is not valid JSON: \(error.message)")
        }
        guard let keys = document.object?["keys"]?.array else {
            throw AuthError(.invalidKey, "\(source): a JWKS is an object with a \"keys\" array")
        }
        guard !keys.isEmpty else { throw AuthError(.invalidKey, "\(source): \"keys\" is empty") }
        var result: [VerificationKey] = []
        for (index, entry) in keys.enumerated() {
            guard let jwk = entry.object else { throw AuthError(.invalidKey, "\(source): keys[\(index)] is not an object") }
            result.append(try key(jwk, source: "\(source) keys[\(index)]"))
        }
        return result
    }

    static func key(_ jwk: [String: JSONValue], source: String) throws(AuthError) -> VerificationKey {
        var keyID: String?
        if let kid = jwk["kid"] {
            guard let text = kid.string, !text.isEmpty else {
                throw AuthError(.invalidKey, "\(source): \"kid\" must be a non-empty string")
            }
            keyID = text
        }
        if let use = jwk["use"], use.string != "sig" {
            throw AuthError(.invalidKey, "\(source): \"use\" must be \"sig\"")
        }
        // A verification key set holds public keys: private members mean the signing key was
        // put where the server (and whoever reads its files) only needs the public half, as
        // --jwt-key-file refuses a private PEM.
        let privateMembers = jwk["kty"]?.string == "oct" ? [] : ["d", "p", "q", "dp", "dq", "qi", "oth"].filter { jwk[$0] != nil }
        if !privateMembers.isEmpty {
            throw AuthError(
                .invalidKey,
                "\(source): carries private key members (\(privateMembers.joined(separator: ", "))); give the public key only")
        }
        let key: VerificationKey
        switch jwk["kty"]?.string {
        case "oct":
            key = try .hmac(secret: try member(jwk, "k", source), keyID: keyID, source: source)
        case "RSA":
            let der = DER.rsaPublicKey(modulus: try member(jwk, "n", source), exponent: try member(jwk, "e", source))
            key = try .publicKey(der: der, keyID: keyID, source: source)
        case "EC":
            guard jwk["crv"]?.string == "P-256" else { throw AuthError(.invalidKey, "\(source): EC keys must have \"crv\": \"P-256\"") }
            guard let der = DER.p256PublicKey(x: try member(jwk, "x", source), y: try member(jwk, "y", source)) else {
                throw AuthError(.invalidKey, "\(source): P-256 \"x\" and \"y\" must be 32 bytes each")
            }
            key = try .publicKey(der: der, keyID: keyID, source: source)
        case let other:
            throw AuthError(.invalidKey, "\(source): \"kty\" \(other.map { "\"\($0)\"" } ?? "missing") is not oct, RSA or EC")
        }
        if let alg = jwk["alg"], alg.string != key.algorithm.rawValue {
            throw AuthError(
                .invalidKey,
                "\(source): \"alg\" \(alg.string.map { "\"\($0)\"" } ?? "?") does not match its kty (\(key.algorithm.rawValue))")
        }
        return key
    }

    static func member(_ jwk: [String: JSONValue], _ name: String, _ source: String) throws(AuthError) -> [UInt8] {
        guard let text = jwk[name]?.string, let bytes = Base64URL.decode(text), !bytes.isEmpty else {
            throw AuthError(.invalidKey, "\(source): \"\(name)\" must be a base64url string")
        }
        return bytes
    }
}
