import GRPCStandardServices
import Logging
import OrchestratorObservability
import PostgresClient

extension ServerRunner {
    /// Keeps gRPC health (`grpc.health.v1`) in step with the database: the whole server ("") and
    /// the services that need it go NOT_SERVING while it does not answer, and back to SERVING when
    /// it does. A load balancer probing gRPC health (docs/SECURITY.md) then stops sending calls
    /// that could only fail UNAVAILABLE, as one probing `/readyz` already did (found by black-box
    /// testing: health said SERVING throughout an outage). `shutdown()` wins: after it, statuses
    /// stay NOT_SERVING.
    func followDatabaseHealth(_ health: HealthService, services: [String], pool: PostgresPool, interval: Duration = .seconds(2)) -> Task<Void, Never> {
        let logger = self.logger
        return Task {
            var serving = true
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                if Task.isCancelled { return }
                let answered = await withTimeout(interval) {
                    (try? await pool.withConnection { try await $0.query("SELECT 1") }) != nil
                } ?? false
                guard answered != serving else { continue }
                serving = answered
                for service in [""] + services { health.setStatus(service: service, status: answered ? .serving : .notServing) }
                if answered {
                    logger.notice("database answers again; gRPC health SERVING")
                } else {
                    logger.warning("database does not answer; gRPC health NOT_SERVING until it does")
                }
            }
        }
    }
}
