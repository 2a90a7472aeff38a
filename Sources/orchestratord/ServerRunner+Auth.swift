import Logging
import NGRPC
import OrchestratorAuth
import OrchestratorGRPC
import PostgresClient

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

    /// In development mode, says so again when the database holds other tenants' workflows: a
    /// server without authentication beside JWT servers on one database hands every tenant's tasks
    /// to its executors and shows them to its callers (found by black-box testing, where an
    /// executor of the no-auth server ran a JWT tenant's task). Two range probes of
    /// workflows_tenant_created_idx; a failure here only skips the warning.
    func warnIfOtherTenantsStored(pool: PostgresPool) async {
        guard settings.auth.verifier == nil else { return }
        do {
            let rows = try await pool.withConnection { session in
                try await session.query(
                    """
                    (SELECT tenant FROM workflows WHERE tenant < 'default' LIMIT 3)
                    UNION ALL
                    (SELECT tenant FROM workflows WHERE tenant > 'default' LIMIT 3)
                    """)
            }
            let tenants = Set(try rows.map { try $0.decode(String.self, column: "tenant") })
            guard !tenants.isEmpty else { return }
            logger.warning(
                """
                AUTHENTICATION IS OFF on a database that holds other tenants' workflows: this server hands their tasks to \
                its executors and shows them to every caller. Run every server on this database with --auth jwt.
                """, metadata: ["tenants": "\(tenants.sorted().joined(separator: ", "))"])
        } catch {
            logger.debug("could not look for other tenants' workflows", metadata: ["error": "\(error)"])
        }
    }
}
