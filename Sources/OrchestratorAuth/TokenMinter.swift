/// A key that signs tokens: an HS256 secret, or a PEM private key (RSA → RS256, EC P-256 → ES256).
public struct SigningKey: Sendable {
    enum Material: Sendable {
        case hmac([UInt8])
        case privateKey(EVPKey)
    }

    public let algorithm: JWSAlgorithm
    let material: Material

    public static func hmac(secret: [UInt8]) throws(AuthError) -> SigningKey {
        guard secret.count >= VerificationKey.minimumSecretBytes else {
            throw AuthError(
                .invalidKey, "an HS256 secret must be at least \(VerificationKey.minimumSecretBytes) bytes, got \(secret.count)")
        }
        return SigningKey(algorithm: .hs256, material: .hmac(secret))
    }

    public static func privateKey(pem: [UInt8], source: String = "private key") throws(AuthError) -> SigningKey {
        let key = try EVPKey.privateKey(pem: pem, source: source)
        return SigningKey(algorithm: key.kind.algorithm, material: .privateKey(key))
    }

    /// A PEM private key file, or else an HS256 secret file (read as `KeyFiles.keyFile` reads it).
    public static func file(_ path: String) throws(AuthError) -> SigningKey {
        let bytes = try FileBytes.read(path)
        let text = String(decoding: bytes, as: UTF8.self)
        if text.contains("-----BEGIN") {
            guard text.contains("PRIVATE KEY-----") else {
                throw AuthError(.invalidKey, "\(path) is not a private key; signing needs the PEM private key (or an HS256 secret file)")
            }
            return try privateKey(pem: bytes, source: path)
        }
        return try hmac(secret: KeyFiles.secret(bytes))
    }

    func sign(_ input: [UInt8]) throws(AuthError) -> [UInt8] {
        switch material {
        case .hmac(let secret):
            return HMACSHA256.mac(key: secret, data: input)
        case .privateKey(let key):
            let signature = try key.sign(input)
            guard algorithm == .es256 else { return signature }
            guard let raw = DER.rawSignature(der: signature) else {
                throw AuthError(.signingFailed, "OpenSSL returned a malformed ECDSA signature")
            }
            return raw
        }
    }
}

/// The claims of a token to mint.
public struct TokenClaims: Sendable {
    public var subject: String
    public var role: Role
    /// `tenant`; `*` for a cross-tenant admin.
    public var tenant: String?
    /// `tenants`, for an executor serving several tenants.
    public var tenants: [String]
    public var issuer: String?
    public var audience: String?
    public var issuedAt: Double
    /// Lifetime in seconds from `issuedAt`.
    public var lifetime: Double
    /// Claims to add as they are (tests use it for odd tokens).
    public var extra: [String: JSONValue]

    public init(
        subject: String, role: Role, tenant: String?, tenants: [String] = [], issuer: String? = nil, audience: String? = nil,
        issuedAt: Double = UnixClock.now(), lifetime: Double = 3600, extra: [String: JSONValue] = [:]
    ) {
        self.subject = subject
        self.role = role
        self.tenant = tenant
        self.tenants = tenants
        self.issuer = issuer
        self.audience = audience
        self.issuedAt = issuedAt
        self.lifetime = lifetime
        self.extra = extra
    }

    var json: [String: JSONValue] {
        let now = issuedAt.rounded(.down)
        var claims: [String: JSONValue] = [
            "sub": .string(subject), "role": .string(role.rawValue), "iat": .number(now), "nbf": .number(now),
            "exp": .number(now + lifetime.rounded(.up)),
        ]
        if let tenant { claims["tenant"] = .string(tenant) }
        if !tenants.isEmpty { claims["tenants"] = .array(tenants.map(JSONValue.string)) }
        if let issuer { claims["iss"] = .string(issuer) }
        if let audience { claims["aud"] = .string(audience) }
        for (name, value) in extra { claims[name] = value }
        return claims
    }
}

/// Signs tokens (`orchctl token`, tests).
public struct TokenMinter: Sendable {
    public let key: SigningKey
    public let keyID: String?

    public init(key: SigningKey, keyID: String? = nil) {
        self.key = key
        self.keyID = keyID
    }

    public func mint(_ claims: TokenClaims) throws(AuthError) -> String {
        try mint(claims: .object(claims.json))
    }

    /// `mint`, after checking the identity claims as the server will: `orchctl token` printed,
    /// with exit 0, tokens every server refuses (a submitter of every tenant, an empty subject;
    /// found by black-box testing).
    public func mintChecked(_ claims: TokenClaims) throws(AuthError) -> String {
        _ = try TokenVerifier.identityClaims(claims.json, expiresAt: claims.issuedAt + claims.lifetime)
        return try mint(claims)
    }

    /// Signs any claims object; `header` members are added to `alg`/`typ`/`kid`.
    public func mint(claims: JSONValue, header extraHeader: [String: JSONValue] = [:]) throws(AuthError) -> String {
        var header: [String: JSONValue] = ["alg": .string(key.algorithm.rawValue), "typ": .string("JWT")]
        if let keyID { header["kid"] = .string(keyID) }
        for (name, value) in extraHeader { header[name] = value }
        let input =
            Base64URL.encode(Array(JSONEncoder.encode(.object(header)).utf8)) + "."
            + Base64URL.encode(Array(JSONEncoder.encode(claims).utf8))
        let signature = try key.sign(Array(input.utf8))
        return input + "." + Base64URL.encode(signature)
    }
}
