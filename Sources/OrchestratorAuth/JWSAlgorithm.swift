/// The signature algorithms accepted. Each key is for exactly one of them: an HMAC secret for
/// HS256, an RSA public key for RS256, a P-256 public key for ES256 — so a token cannot make an
/// RSA public key act as an HMAC secret (the classic HS/RS key confusion).
public enum JWSAlgorithm: String, Sendable, Hashable, CaseIterable {
    case hs256 = "HS256"
    case rs256 = "RS256"
    case es256 = "ES256"

    /// Reads a header's `alg`, refusing `none` (in any spelling) and everything else unsupported.
    static func parse(_ name: String) throws(AuthError) -> JWSAlgorithm {
        if let algorithm = JWSAlgorithm(rawValue: name) { return algorithm }
        if name.lowercased() == "none" {
            throw AuthError(.unsupportedAlgorithm, "alg \"\(name)\" is refused: unsigned tokens are never accepted")
        }
        throw AuthError(.unsupportedAlgorithm, "alg \"\(name)\" is not supported (HS256, RS256 or ES256)")
    }
}
