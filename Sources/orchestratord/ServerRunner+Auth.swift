import Logging
import NGRPC
import OrchestratorAuth
import OrchestratorGRPC

extension ServerRunner {
    /// The auth interceptor for `auth jwt`, or nil in development mode (after saying so loudly).
    func authInterceptor() -> (any ServerInterceptor)? {
        guard let verifier = settings.auth.verifier else {
            logger.warning(
                """
                AUTHENTICATION IS OFF (development mode): every caller acts as the admin of tenant "default" and sees \
                every tenant. Never expose this server. Turn it on with --auth jwt --jwt-key-file PATH (see docs/SECURITY.md).
                """)
            return nil
        }
        let keys = verifier.keys.keys.map { "\($0.algorithm.rawValue)\($0.keyID.map { " kid=\($0)" } ?? "")" }
        logger.notice(
            "authentication: JWT bearer tokens",
            metadata: [
                "keys": "\(keys.joined(separator: ", "))", "issuer": "\(verifier.policy.issuer ?? "(any)")",
                "audience": "\(verifier.policy.audience ?? "(any)")", "clock_skew_s": "\(Int(verifier.policy.clockSkew))",
            ])
        return AuthInterceptor(verifier: verifier, logger: Logger(label: "orchestrator.auth"))
    }
}
