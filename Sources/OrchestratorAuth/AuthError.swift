/// Why a token, a key or a signature was refused. `message` is safe to show to the caller: it
/// names the rule that failed, never key material.
public struct AuthError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Code: String, Sendable, Hashable {
        /// Not a compact JWS: wrong shape, bad base64url, bad JSON, too large.
        case malformedToken
        /// `alg: none` or an algorithm other than HS256, RS256, ES256.
        case unsupportedAlgorithm
        /// The token's `alg` is not the one the selected key is for (HS/RS key confusion).
        case algorithmKeyMismatch
        /// No configured key has the token's `kid`.
        case unknownKey
        /// The signature does not verify.
        case badSignature
        /// `exp` is in the past (beyond the clock skew).
        case expired
        /// `nbf` is in the future (beyond the clock skew).
        case notYetValid
        case wrongIssuer
        case wrongAudience
        /// A required claim is missing or has the wrong type or value.
        case invalidClaims
        /// A key file, secret or JWKS could not be used.
        case invalidKey
        /// OpenSSL could not sign (minting).
        case signingFailed
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
