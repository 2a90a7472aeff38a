/// What a token must satisfy besides its signature.
public struct TokenPolicy: Sendable {
    /// Required `iss`; nil = not checked.
    public var issuer: String?
    /// Required member of `aud` (a string or an array); nil = not checked.
    public var audience: String?
    /// Tolerance for `exp` and `nbf` against this machine's clock, in seconds.
    public var clockSkew: Double

    public static let defaultClockSkew: Double = 60

    public init(issuer: String? = nil, audience: String? = nil, clockSkew: Double = TokenPolicy.defaultClockSkew) {
        self.issuer = issuer
        self.audience = audience
        self.clockSkew = clockSkew
    }
}

/// Verifies bearer tokens: compact JWS, signature with the configured keys, then the claims.
///
/// Claims read (docs/SECURITY.md):
/// - `sub` (string, required), `role` (submitter | executor | viewer | admin, required);
/// - `tenant` (string): the caller's tenant; `*` (admins only) grants every tenant;
/// - `tenants` (array of strings, executors only): serve several tenants; may replace `tenant`;
/// - `exp` (required), `nbf` (optional): NumericDate, checked with `clockSkew`;
/// - `iss`, `aud` (string or array): checked when the policy names them.
public struct TokenVerifier: Sendable {
    public let keys: KeySet
    public let policy: TokenPolicy
    /// Seconds since 1970; injected so tests control time.
    let now: @Sendable () -> Double

    /// Longest tenant name and subject accepted.
    static let maxNameLength = 256

    public init(keys: KeySet, policy: TokenPolicy = TokenPolicy(), now: @escaping @Sendable () -> Double = UnixClock.now) {
        self.keys = keys
        self.policy = policy
        self.now = now
    }

    public func verify(_ token: String) throws(AuthError) -> VerifiedIdentity {
        let jws = try CompactJWS(parsing: token)
        let candidates = try keys.candidates(keyID: jws.keyID, algorithm: jws.algorithm)
        guard candidates.contains(where: { $0.verifies(jws.signingInput, signature: jws.signature) }) else {
            throw AuthError(.badSignature, "signature does not verify")
        }
        return try identity(jws.claims)
    }

    func identity(_ claims: [String: JSONValue]) throws(AuthError) -> VerifiedIdentity {
        let now = self.now()
        guard let exp = claims["exp"] else { throw AuthError(.invalidClaims, "token has no \"exp\"; tokens must expire") }
        guard let expiresAt = exp.number else { throw AuthError(.invalidClaims, "\"exp\" must be a number (seconds since 1970)") }
        guard now < expiresAt + policy.clockSkew else {
            throw AuthError(
                .expired, "token expired at \(Self.time(expiresAt)) (now \(Self.time(now)), allowed skew \(Self.time(policy.clockSkew)) s)")
        }
        if let nbf = claims["nbf"] {
            guard let notBefore = nbf.number else { throw AuthError(.invalidClaims, "\"nbf\" must be a number (seconds since 1970)") }
            guard now + policy.clockSkew >= notBefore else {
                throw AuthError(
                    .notYetValid,
                    "token is not valid before \(Self.time(notBefore)) (now \(Self.time(now)), allowed skew \(Self.time(policy.clockSkew)) s)"
                )
            }
        }
        // Compared byte by byte, as every name is here (`isNFC`).
        if let issuer = policy.issuer {
            guard let value = claims["iss"] else { throw AuthError(.wrongIssuer, "token has no \"iss\"; expected \"\(issuer)\"") }
            guard let iss = value.string else { throw AuthError(.wrongIssuer, "\"iss\" must be a string") }
            guard iss.utf8.elementsEqual(issuer.utf8) else {
                throw AuthError(.wrongIssuer, "issuer \"\(Self.escaped(iss))\" is not the expected \"\(issuer)\"")
            }
        }
        if let audience = policy.audience {
            let audiences: [String]
            switch claims["aud"] {
            case .string(let one)?: audiences = [one]
            case .array(let many)? where many.allSatisfy({ $0.string != nil }): audiences = many.compactMap(\.string)
            case nil: throw AuthError(.wrongAudience, "token has no \"aud\"; expected \"\(audience)\"")
            default: throw AuthError(.wrongAudience, "\"aud\" must be a string or an array of strings")
            }
            guard audiences.contains(where: { $0.utf8.elementsEqual(audience.utf8) }) else {
                throw AuthError(.wrongAudience, "audience \(audiences.map(Self.escaped)) does not include \"\(audience)\"")
            }
        }
        return try Self.identityClaims(claims, expiresAt: expiresAt)
    }

    /// The identity a token's `sub`, `role`, `tenant` and `tenants` claims name, checked as the
    /// server checks them (also for `orchctl token`, which refused nothing the server refuses).
    public static func identityClaims(_ claims: [String: JSONValue], expiresAt: Double) throws(AuthError) -> VerifiedIdentity {
        // A NUL in the subject made every write fail INTERNAL (PostgreSQL text cannot hold it);
        // newlines and escape sequences forged lines in text logs (found by black-box testing).
        guard let subject = claims["sub"]?.string, !subject.isEmpty, subject.utf8.count <= Self.maxNameLength,
            !subject.unicodeScalars.contains(where: isInvisible)
        else {
            throw AuthError(
                .invalidClaims,
                "\"sub\" must be a non-empty string of at most \(Self.maxNameLength) bytes without control or invisible format characters")
        }
        guard isNFC(subject) else { throw AuthError(.invalidClaims, "\"sub\" \(notNFC)") }
        guard let roleName = claims["role"]?.string else {
            throw AuthError(.invalidClaims, "\"role\" must be one of \(Role.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard let role = Role(rawValue: roleName) else {
            throw AuthError(.invalidClaims, "role \"\(escaped(roleName))\" is not one of \(Role.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let (tenant, grant) = try tenants(claims, role: role)
        return VerifiedIdentity(subject: subject, role: role, tenant: tenant, grant: grant, expiresAt: expiresAt)
    }

    static func tenants(_ claims: [String: JSONValue], role: Role) throws(AuthError) -> (String, TenantGrant) {
        var single: String?
        if let value = claims["tenant"] {
            guard let text = value.string else { throw AuthError(.invalidClaims, "\"tenant\" must be a string") }
            single = text
        }
        if single == VerifiedIdentity.allTenants {
            guard role == .admin else { throw AuthError(.invalidClaims, "tenant \"*\" (every tenant) is only for role admin") }
            guard claims["tenants"] == nil else { throw AuthError(.invalidClaims, "tenant \"*\" cannot be combined with \"tenants\"") }
            return (VerifiedIdentity.crossTenantHome, .all)
        }
        var served = Set<String>()
        if let single { served.insert(try Self.tenantName(single)) }
        if let value = claims["tenants"] {
            guard role == .executor else { throw AuthError(.invalidClaims, "\"tenants\" (several tenants) is only for role executor") }
            guard let list = value.array, !list.isEmpty, list.count <= 1000 else {
                throw AuthError(.invalidClaims, "\"tenants\" must be a non-empty array of at most 1000 tenant names")
            }
            for entry in list {
                guard let text = entry.string else { throw AuthError(.invalidClaims, "\"tenants\" must hold strings") }
                served.insert(try Self.tenantName(text))
            }
        }
        guard !served.isEmpty else { throw AuthError(.invalidClaims, "token has no \"tenant\"") }
        return (single ?? served.sorted()[0], .only(served))
    }

    /// Whole seconds for messages; any finite claim value (1e300 included) prints without trapping.
    static func time(_ seconds: Double) -> String {
        Int64(exactly: seconds.rounded(.down)).map(String.init) ?? "\(seconds)"
    }

    static func tenantName(_ text: String) throws(AuthError) -> String {
        guard !text.isEmpty, text.utf8.count <= maxNameLength, text != VerifiedIdentity.allTenants,
            !text.unicodeScalars.contains(where: isInvisible)
        else {
            throw AuthError(
                .invalidClaims,
                "tenant \"\(escaped(text))\" must be 1-\(maxNameLength) bytes without control or invisible format characters "
                    + "(\"*\" only alone, for admins)")
        }
        guard isNFC(text) else { throw AuthError(.invalidClaims, "tenant \"\(escaped(text))\" \(notNFC)") }
        return text
    }

    static let notNFC =
        "must be in Unicode normalization form C (NFC): names are compared byte by byte, and a canonically equivalent "
        + "spelling (U+212A KELVIN SIGN for \"K\", a decomposed accent) would be another name that looks the same"

    /// The subject and tenants name an identity; Swift's `==` treats canonically equivalent
    /// strings as equal where PostgreSQL compares bytes, so only the one canonical spelling is
    /// accepted (found by black-box testing: a tenant "\u{212A}raft" read tenant "Kraft"'s audit
    /// trail). `_nfcCodeUnits` is the standard library's public normaliser, spared a Foundation import.
    static func isNFC(_ text: String) -> Bool {
        text.utf8.elementsEqual(text._nfcCodeUnits)
    }

    /// Control characters, format characters (bidirectional overrides, zero-width ones) and
    /// the Unicode line and paragraph separators: what could forge or disguise a log line. The
    /// rule of OrchestratorDomain's `Unicode.Scalar.isInvisibleInText`, which this module (no
    /// dependencies but libevent's crypto) does not import.
    static func isInvisible(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.properties.generalCategory {
        case .control, .format, .lineSeparator, .paragraphSeparator: true
        default: false
        }
    }

    /// `text` with those characters written as `\u{…}`, for messages that echo a refused name.
    static func escaped(_ text: String) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            if isInvisible(scalar) { out += "\\u{" + String(scalar.value, radix: 16, uppercase: true) + "}" } else { out.unicodeScalars.append(scalar) }
        }
        return out
    }
}
