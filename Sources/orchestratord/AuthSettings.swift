import OrchestratorAuth

/// Authentication settings: `auth`, `jwt-key-file`, `jwks-file`, `jwt-issuer`, `jwt-audience`,
/// `jwt-clock-skew`. With `auth jwt` the keys are loaded here, so a bad key file stops the server
/// at start-up with the reason instead of failing every call later.
struct AuthSettings: Sendable {
    enum Mode: String, Sendable {
        /// Development: no authentication; every caller is the admin of tenant "default".
        case none
        case jwt
    }

    var mode: Mode
    /// The verifier for `jwt` mode; nil in `none` mode.
    var verifier: TokenVerifier?

    init(_ settings: ResolvedSettings) throws {
        let modeText = (settings.value("auth") ?? "none").lowercased()
        guard let mode = Mode(rawValue: modeText) else {
            throw SettingsError(description: "auth \"\(modeText)\" is not none or jwt")
        }
        self.mode = mode
        let keyFile = settings.value("jwt-key-file").flatMap { $0.isEmpty ? nil : $0 }
        let jwksFile = settings.value("jwks-file").flatMap { $0.isEmpty ? nil : $0 }
        // Checked whatever the mode: a bad value must not wait, unnoticed, for auth to be turned on.
        let skewText = settings.value("jwt-clock-skew") ?? "60"
        guard let skew = Int(skewText), (0...3600).contains(skew) else {
            throw SettingsError(description: "jwt-clock-skew \"\(skewText)\" must be an integer in 0...3600 (seconds)")
        }
        guard mode == .jwt else {
            if keyFile != nil || jwksFile != nil {
                throw SettingsError(description: "jwt-key-file/jwks-file are set but auth is none; add --auth jwt (or unset them)")
            }
            verifier = nil
            return
        }
        guard keyFile != nil || jwksFile != nil else {
            throw SettingsError(description: "auth jwt needs jwt-key-file (HS256 secret or PEM public key) or jwks-file")
        }
        let policy = TokenPolicy(
            issuer: settings.value("jwt-issuer").flatMap { $0.isEmpty ? nil : $0 },
            audience: settings.value("jwt-audience").flatMap { $0.isEmpty ? nil : $0 },
            clockSkew: Double(skew))
        switch Result(catching: { () throws(AuthError) in try Self.verifier(keyFile: keyFile, jwksFile: jwksFile, policy: policy) }) {
        case .success(let loaded): verifier = loaded
        case .failure(let error): throw SettingsError(description: "authentication keys: \(error.message)")
        }
    }

    static func verifier(keyFile: String?, jwksFile: String?, policy: TokenPolicy) throws(AuthError) -> TokenVerifier {
        var keys: [VerificationKey] = []
        if let keyFile { keys.append(try KeyFiles.keyFile(keyFile)) }
        if let jwksFile { keys += try KeyFiles.jwksFile(jwksFile) }
        return TokenVerifier(keys: try KeySet(keys), policy: policy)
    }
}
