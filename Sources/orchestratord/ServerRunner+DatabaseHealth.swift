import GRPCStandardServices
import Logging
import OrchestratorObservability
import OrchestratorStore
import PostgresClient

extension ServerRunner {
    /// The newest migration applied to the database (health and readiness compare it with theirs).
    static let appliedMigrationSQL = "SELECT coalesce(max(version), 0)::int8 AS version FROM schema_migrations"

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
    ///
    /// The probe has a connection of its own (`PostgresProbe`): through the pool, a server whose
    /// connections were all busy went NOT_SERVING with its database answering.
    func followDatabaseHealth(_ health: HealthService, services: [String], probe: PostgresProbe, interval: Duration = .seconds(2)) -> Task<Void, Never> {
        let logger = self.logger
        let shipped = OrchestratorMigrations.all.map(\.version).max() ?? 0
        return Task {
            var serving = true
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                if Task.isCancelled { return }
                let applied = await withTimeout(interval) { await probe.integer(Self.appliedMigrationSQL).map(Int.init) } ?? nil
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
