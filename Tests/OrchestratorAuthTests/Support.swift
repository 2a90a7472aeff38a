@testable import OrchestratorAuth

/// Builders shared by the verifier tests: keys, a fixed clock, and hand-made tokens.
enum Fixture {
    static let now: Double = 1_800_000_000
    static let secret = Array("0123456789abcdef0123456789abcdef-test-secret".utf8)

    static func hmacKey(kid: String? = nil) throws -> VerificationKey { try .hmac(secret: secret, keyID: kid) }
    static func rsaKey(kid: String? = nil) throws -> VerificationKey { try .publicKey(pem: Array(TestKeys.rsaPublic.utf8), keyID: kid) }
    static func ecKey(kid: String? = nil) throws -> VerificationKey { try .publicKey(pem: Array(TestKeys.ecPublic.utf8), keyID: kid) }

    static func verifier(_ keys: [VerificationKey], policy: TokenPolicy = TokenPolicy(), now: Double = Fixture.now) throws -> TokenVerifier
    {
        TokenVerifier(keys: try KeySet(keys), policy: policy, now: { now })
    }

    static func minter(_ pem: String, kid: String? = nil) throws -> TokenMinter {
        TokenMinter(key: try .privateKey(pem: Array(pem.utf8)), keyID: kid)
    }

    static func hmacMinter(kid: String? = nil) throws -> TokenMinter { TokenMinter(key: try .hmac(secret: secret), keyID: kid) }

    static func claims(role: Role = .submitter, tenant: String? = "acme", lifetime: Double = 600, at: Double = Fixture.now) -> TokenClaims {
        TokenClaims(subject: "alice", role: role, tenant: tenant, issuedAt: at, lifetime: lifetime)
    }

    /// A token with an arbitrary header and claims, signed with HS256 over exactly those bytes.
    static func handMade(header: String, claims: String, signature: [UInt8]? = nil) -> String {
        let input = Base64URL.encode(Array(header.utf8)) + "." + Base64URL.encode(Array(claims.utf8))
        let tag = signature ?? HMACSHA256.mac(key: secret, data: Array(input.utf8))
        return input + "." + Base64URL.encode(tag)
    }

    static func rejection(_ verifier: TokenVerifier, _ token: String) -> AuthError? {
        do {
            _ = try verifier.verify(token)
            return nil
        } catch {
            return error
        }
    }
}
