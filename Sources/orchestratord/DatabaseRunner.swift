import ArgumentParser
import Foundation
import Logging
import OrchestratorStore
import PostgresClient

/// Brings up the database the server uses: the configured URL, or an embedded cluster in the
/// data folder (initialised on first start, reused afterwards, stopped on shutdown); then
/// applies migrations under an advisory lock.
struct Database {
    let pool: PostgresPool
    /// Health checks' own connection (gRPC health, `/readyz`): not queued behind a busy pool.
    let probe: PostgresProbe
    let conninfo: String
    let embedded: EmbeddedPostgres?

    static func open(
        _ settings: ServerSettings, logger: Logger, instrumentation: PostgresInstrumentation = PostgresInstrumentation()
    ) async throws -> Database {
        var embedded: EmbeddedPostgres?
        let conninfo: String
        if let url = settings.databaseURL {
            conninfo = url
        } else {
            let folder = URL(fileURLWithPath: settings.dataDirectory, isDirectory: true)
            let cluster = EmbeddedPostgres(dataDirectory: folder, port: settings.embeddedPort, logger: Logger(label: "postgres.embedded"))
            logger.notice("no database-url: using the embedded PostgreSQL cluster", metadata: ["data_dir": "\(folder.path)", "port": "\(settings.embeddedPort)"])
            // initdb and pg_ctl block; keep them off the cooperative pool.
            conninfo = try await Self.offPool { try cluster.start() }
            embedded = cluster
        }
        var poolConfiguration = PostgresPoolConfiguration(conninfo: conninfo, maxConnections: settings.databasePoolSize)
        if settings.tracing.isEnabled { poolConfiguration.transactionObserver = TracingTransactionObserver() }
        var instrumented = poolConfiguration
        instrumented.instrumentation = instrumentation
        let pool = PostgresPool(configuration: instrumented)
        do {
            let report = try await Migrator(migrations: OrchestratorMigrations.all).migrate(using: pool)
            logger.info("database ready", metadata: ["applied_migrations": "\(report.applied)", "already_applied": "\(report.alreadyApplied.count)"])
        } catch {
            pool.close()
            if let embedded { try? await Self.offPool { try embedded.stop() } }
            if settings.databaseURL != nil, let failure = error as? PostgresError,
                [.invalidArgument, .invalidPassword, .invalidCatalogName].contains(failure.code)
            {
                // A URL no retry can mend: named as the setting to fix (exit 64), at once.
                throw ValidationError("database-url cannot be used: \(failure.message)")
            }
            throw error
        }
        return Database(pool: pool, probe: PostgresProbe(conninfo: conninfo), conninfo: conninfo, embedded: embedded)
    }

    func close(logger: Logger) async {
        pool.close()
        await probe.close()
        if let embedded, embedded.adopted {
            // Another orchestratord on the same data folder may still be using it (found by
            // black-box testing: stopping the second server took the first one's database away).
            logger.notice("leaving the embedded PostgreSQL running: this process adopted it, it did not start it")
        } else if let embedded {
            do {
                try await Self.offPool { try embedded.stop() }
                logger.info("embedded PostgreSQL stopped")
            } catch {
                logger.warning("could not stop the embedded PostgreSQL", metadata: ["error": "\(error)"])
            }
        }
    }

    static func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread {
                continuation.resume(with: Result { try body() })
            }
        }
    }
}
