import GRPCStandardServices
import Logging
import OrchestratorObservability
import OrchestratorStore
import PostgresClient

extension ServerRunner {
    /// Keeps gRPC health (`grpc.health.v1`) in step with the database: the whole server ("") and
    /// the services that need it go NOT_SERVING while it does not answer, and back to SERVING when
    /// it does. A load balancer probing gRPC health (docs/SECURITY.md) then stops sending calls
    /// that could only fail UNAVAILABLE, as one probing `/readyz` already did (found by black-box
    /// testing: health said SERVING throughout an outage). `shutdown()` wins: after it, statuses
    /// stay NOT_SERVING.
    ///
    /// A database a newer server migrated counts the same: `/readyz` answered 503 "schema newer
    /// than this server" during a rolling upgrade while gRPC health said SERVING, so a load
    /// balancer probing gRPC health kept sending this old server calls (found by black-box testing).
    func followDatabaseHealth(_ health: HealthService, services: [String], pool: PostgresPool, interval: Duration = .seconds(2)) -> Task<Void, Never> {
        let logger = self.logger
        let shipped = OrchestratorMigrations.all.map(\.version).max() ?? 0
        return Task {
            var serving = true
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                if Task.isCancelled { return }
                let applied = await withTimeout(interval) {
                    try? await pool.withConnection { session in
                        try await session.query("SELECT coalesce(max(version), 0)::int8 AS version FROM schema_migrations")
                            .first?.decode(Int.self, column: "version")
                    }
                } ?? nil
                let newer = applied.map { $0 > shipped } ?? false
                let answered = applied != nil && !newer
                guard answered != serving else { continue }
                serving = answered
                for service in [""] + services { health.setStatus(service: service, status: answered ? .serving : .notServing) }
                if answered {
                    logger.notice("database answers again; gRPC health SERVING")
                } else if newer, let applied {
                    logger.warning(
                        "a newer server migrated the database; gRPC health NOT_SERVING (upgrade this server)",
                        metadata: ["database_migration": "\(applied)", "shipped_migrations": "\(shipped)"])
                } else {
                    logger.warning("database does not answer; gRPC health NOT_SERVING until it does")
                }
            }
        }
    }
}
