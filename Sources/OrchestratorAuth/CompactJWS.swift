/// A token in JWS compact serialisation (`header.payload.signature`), split and decoded but not
/// yet verified.
struct CompactJWS {
    /// Longest token accepted. Real tokens are a few hundred bytes; the cap bounds the work an
    /// unauthenticated caller can cause (base64, JSON, a signature check).
    static let maxTokenBytes = 8192

    let header: [String: JSONValue]
    let claims: [String: JSONValue]
    let algorithm: JWSAlgorithm
    let keyID: String?
    /// `base64url(header) . base64url(payload)`: the bytes the signature covers.
    let signingInput: [UInt8]
    let signature: [UInt8]

    init(parsing token: String) throws(AuthError) {
        let bytes = Array(token.utf8)
        guard !bytes.isEmpty else { throw AuthError(.malformedToken, "empty token") }
        guard bytes.count <= Self.maxTokenBytes else {
            throw AuthError(.malformedToken, "token is \(bytes.count) bytes, more than the \(Self.maxTokenBytes) accepted")
        }
        let parts = bytes.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard parts.count == 3 else {
            throw AuthError(.malformedToken, "a JWT has three dot-separated parts, this token has \(parts.count)")
        }
        guard let headerBytes = Base64URL.decode(parts[0]) else { throw AuthError(.malformedToken, "header is not base64url") }
        guard let payloadBytes = Base64URL.decode(parts[1]) else { throw AuthError(.malformedToken, "payload is not base64url") }
        guard let signature = Base64URL.decode(parts[2]) else { throw AuthError(.malformedToken, "signature is not base64url") }
        let header = try Self.object(headerBytes, "header")
        guard let algName = header["alg"]?.string else { throw AuthError(.malformedToken, "header has no \"alg\" string") }
        let algorithm = try JWSAlgorithm.parse(algName)
        // `crit` names extensions the verifier must understand; we understand none (RFC 7515 §4.1.11).
        if header["crit"] != nil { throw AuthError(.malformedToken, "header \"crit\" extensions are not supported") }
        if let type = header["typ"] {
            guard let text = type.string, ["jwt", "at+jwt", "application/jwt"].contains(text.lowercased()) else {
                throw AuthError(.malformedToken, "header \"typ\" must be \"JWT\"")
            }
        }
        var keyID: String?
        if let kid = header["kid"] {
            guard let text = kid.string else { throw AuthError(.malformedToken, "header \"kid\" must be a string") }
            keyID = text
        }
        guard !signature.isEmpty else { throw AuthError(.malformedToken, "signature is empty") }
        self.header = header
        self.claims = try Self.object(payloadBytes, "payload")
        self.algorithm = algorithm
        self.keyID = keyID
        self.signingInput = Array(bytes[0..<(parts[0].count + 1 + parts[1].count)])
        self.signature = signature
    }

    static func object(_ bytes: [UInt8], _ part: String) throws(AuthError) -> [String: JSONValue] {
        let value: JSONValue
        do {
            value = try StrictJSONParser.parse(bytes)
        } catch {
            throw AuthError(.malformedToken, "\(part) is not valid JSON: \(error.message)")
        }
        guard let object = value.object else { throw AuthError(.malformedToken, "\(part) must be a JSON object") }
        return object
    }
}
