/// The keys a server accepts tokens from: one key file, a JWKS with several keys by `kid`
/// (rotation: publish the new key beside the old, switch signers, drop the old later), or both.
public struct KeySet: Sendable {
    public let keys: [VerificationKey]

    public init(_ keys: [VerificationKey]) throws(AuthError) {
        guard !keys.isEmpty else { throw AuthError(.invalidKey, "no verification keys configured") }
        var seen = Set<String>()
        for case let kid? in keys.map(\.keyID) {
            guard seen.insert(kid).inserted else { throw AuthError(.invalidKey, "two keys share kid \"\(kid)\"") }
        }
        self.keys = keys
    }

    /// The keys to try for a token: the one named by its `kid`, else every key of its algorithm.
    /// Throws when the named key exists but is for another algorithm — a token signed with an
    /// RSA public key used as an HMAC secret lands here.
    func candidates(keyID: String?, algorithm: JWSAlgorithm) throws(AuthError) -> [VerificationKey] {
        if let keyID, let named = keys.first(where: { $0.keyID == keyID }) {
            guard named.algorithm == algorithm else {
                throw AuthError(
                    .algorithmKeyMismatch,
                    "token alg \(algorithm.rawValue) does not match key \"\(keyID)\", which is an \(named.algorithm.rawValue) key")
            }
            return [named]
        }
        // A kid no key carries: fall back to keys published without one (a single key file), so
        // issuers that always set `kid` still work with `--jwt-key-file`.
        let unnamed = keys.filter { $0.keyID == nil }
        if let keyID, unnamed.isEmpty {
            throw AuthError(.unknownKey, "no configured key has kid \"\(keyID)\"")
        }
        let pool = keyID == nil ? keys : unnamed
        let matching = pool.filter { $0.algorithm == algorithm }
        guard !matching.isEmpty else {
            let have = Set(pool.map(\.algorithm.rawValue)).sorted().joined(separator: ", ")
            throw AuthError(.algorithmKeyMismatch, "token alg \(algorithm.rawValue) does not match the configured key type (\(have))")
        }
        return matching
    }
}
