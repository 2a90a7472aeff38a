import CLibevent
import OrchestratorAuth

/// JWT parsing and verification (`OrchestratorAuth.TokenVerifier`) with fixed keys: an HS256
/// secret (kid `h`), an ES256 and an RS256 public key (kids `e`, `r`), a fixed clock and, by
/// choice, an issuer and audience policy.
///
/// Input: byte 0 picks the mode and the policy.
/// - Raw: the rest is the bearer token as a caller sends it (splitting, base64url, JSON, `alg`,
///   `kid`, the ECDSA signature conversion, signature checks).
/// - Signed: the rest is `header JSON` 0xFF `claims JSON`; the target signs them with the HS256
///   secret, so the fuzzer reaches the claim checks behind the signature (`exp`, `nbf`, roles,
///   tenants) with bytes it chose.
///
/// Checked besides "never crashes": a token that verifies yields a coherent identity (a subject
/// of 1-256 bytes; every tenant for admins only; a home tenant it may act in), and a token minted
/// from that identity verifies to the same identity.
public enum JWTTarget {
    public static let name = "FuzzJWT"

    static let secret = Array("fuzz-target-hs256-secret-of-32+bytes!".utf8)
    static let now = 1_800_000_000.0

    static let ecPublicKey = """
        -----BEGIN PUBLIC KEY-----
        MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE9wE1kZBcyOlPlRfjFGFlXBIYMJEQ
        lQRcT3hBAdjq3v0KD7zYBz0kunhMW8QVUbtZeJimaofgTZjZ1v+mccZYvQ==
        -----END PUBLIC KEY-----
        """
    static let rsaPublicKey = """
        -----BEGIN PUBLIC KEY-----
        MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEArmY++t6Q1RZBEJwH0kdd
        PpqPzx7jw2/wg0nJGDxgQeAhIscUTDQQFnF1ev34M2qvNoIkqXTtN68S4nLG6lPF
        dOqwS1dZZkD7cV/KMXeWdSb9GlLgYcNLN5o3pY9FArUP8nOafbk46KX1sfTHilTU
        yYonVavh6FbI8rVzsKaLooWul5HEUDeeQUuAK6t7zd3TrEN86mEc82Nw0eHD3doC
        F8nok02IthXp+3HLV3WhP9N1SNtcKIqwucnl6FsqqYJqxJjh3sVewjdNw9Zi8dAk
        F586FEggXdvHAWzPm5kg4P6bzNLkTzeRpKCQImGgTxm1Crk6wBQsLTUmogXsDen3
        ywIDAQAB
        -----END PUBLIC KEY-----
        """

    static let verifiers: [TokenVerifier] = {
        let keys: KeySet
        do {
            keys = try KeySet([
                .hmac(secret: secret, keyID: "h"),
                .publicKey(pem: Array(ecPublicKey.utf8), keyID: "e"),
                .publicKey(pem: Array(rsaPublicKey.utf8), keyID: "r"),
            ])
        } catch {
            fatalError("fuzz keys do not load: \(error)")
        }
        return [
            TokenPolicy(),
            TokenPolicy(issuer: "https://issuer.example", audience: "orchestrator", clockSkew: 0),
        ].map { policy in TokenVerifier(keys: keys, policy: policy, now: { now }) }
    }()

    static let minter: TokenMinter = {
        do {
            return TokenMinter(key: try .hmac(secret: secret), keyID: "h")
        } catch {
            fatalError("fuzz signing key does not load: \(error)")
        }
    }()

    public static func run(_ data: [UInt8]) {
        var input = FuzzInput(data)
        let selector = Int(input.byte())
        let verifier = verifiers[(selector / 2) % verifiers.count]
        let token: String
        if selector % 2 == 0 {
            token = String(decoding: input.rest(), as: UTF8.self)
        } else {
            let rest = input.rest()
            let cut = rest.firstIndex(of: 0xFF) ?? rest.count
            token = signed(header: Array(rest[..<cut]), claims: Array(rest[min(cut + 1, rest.count)...]))
        }
        guard let identity = try? verifier.verify(token) else { return }
        check(identity, verifier: verifier)
    }

    /// `base64url(header).base64url(claims).base64url(HMAC-SHA256)` over the bytes as given.
    static func signed(header: [UInt8], claims: [UInt8]) -> String {
        let input = base64URL(header) + "." + base64URL(claims)
        let bytes = Array(input.utf8)
        var tag = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        _ = secret.withUnsafeBufferPointer { key in
            bytes.withUnsafeBufferPointer { data in
                tag.withUnsafeMutableBufferPointer { out in
                    HMAC(EVP_sha256(), key.baseAddress, Int32(key.count), data.baseAddress, data.count, out.baseAddress, &length)
                }
            }
        }
        return input + "." + base64URL(tag)
    }

    static func base64URL(_ bytes: [UInt8]) -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
        var out: [UInt8] = []
        var index = 0
        while index < bytes.count {
            let chunk = bytes[index..<min(index + 3, bytes.count)]
            var value: UInt32 = 0
            for (offset, byte) in chunk.enumerated() { value |= UInt32(byte) << UInt32(16 - 8 * offset) }
            for sextet in 0...chunk.count { out.append(alphabet[Int(value >> UInt32(18 - 6 * sextet) & 63)]) }
            index += 3
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func check(_ identity: VerifiedIdentity, verifier: TokenVerifier) {
        fuzzCheck(!identity.subject.isEmpty && identity.subject.utf8.count <= 256, "subject of \(identity.subject.utf8.count) bytes accepted")
        if identity.grant == .all {
            fuzzCheck(identity.role == .admin, "role \(identity.role) was granted every tenant")
        } else {
            fuzzCheck(identity.grant.contains(identity.tenant), "home tenant \(identity.tenant) is outside the grant \(identity.grant)")
        }
        fuzzCheck(identity.expiresAt + verifier.policy.clockSkew > now, "an expired token verified")

        // Minting the identity again gives a token that verifies to the same identity.
        var tenants: [String] = []
        var tenant: String? = identity.tenant
        switch identity.grant {
        case .all: tenant = "*"
        case .only(let served) where served != [identity.tenant]: tenants = served.sorted()
        case .only: break
        }
        let claims = TokenClaims(
            subject: identity.subject, role: identity.role, tenant: tenant, tenants: tenants,
            issuer: verifier.policy.issuer, audience: verifier.policy.audience, issuedAt: now, lifetime: 60)
        do {
            let again = try verifier.verify(try minter.mint(claims))
            fuzzCheck(again.subject == identity.subject && again.role == identity.role && again.tenant == identity.tenant
                      && again.grant == identity.grant,
                      "the identity re-minted verifies differently: \(again) vs \(identity)")
        } catch {
            fuzzCheck(false, "the identity \(identity) re-minted does not verify: \(error)")
        }
    }
}
