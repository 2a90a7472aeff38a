import Foundation
import Logging
import OrchestratorStore
import PostgresClient
import TestSupport
import Testing

/// Where these tests' databases come from: `ORCHESTRATOR_TEST_DATABASE_URL` (set by tools/test),
/// or else one embedded cluster per test process, in a temporary folder, stopped at exit. Every
/// test gets a migrated database of its own (`store_<random>`), dropped afterwards, so tests run
/// in parallel. Adapted from Tests/PostgresClientTests/TestDatabase.swift (test targets cannot
/// depend on each other).
enum TestDatabase {
    static let adminURL: String = {
        if let url = ProcessInfo.processInfo.environment["ORCHESTRATOR_TEST_DATABASE_URL"], !url.isEmpty { return url }
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent(
            "orch-store-pg-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try! FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let cluster = EmbeddedPostgres(
            dataDirectory: folder.appendingPathComponent("data"), port: freePort(), database: "postgres", durable: false)
        try! cluster.start()
        sharedCluster = cluster
        sharedFolder = folder
        atexit {
            try? TestDatabase.sharedCluster?.stop()
            if let folder = TestDatabase.sharedFolder { try? FileManager.default.removeItem(at: folder) }
        }
        return cluster.url(database: "postgres")
    }()

    nonisolated(unsafe) static var sharedCluster: EmbeddedPostgres?
    nonisolated(unsafe) static var sharedFolder: URL?

    /// Creates a database, applies the store's migrations, runs `body` with a store on it, then
    /// closes everything and drops the database.
    static func withStore<T>(
        maxConnections: Int = 4, configuration: StoreConfiguration = StoreConfiguration(),
        _ body: (PostgresStore, PostgresPool) async throws -> T
    ) async throws -> T {
        let name = "store_\(UInt64.random(in: 0...UInt64.max))"
        let admin = try PostgresConnection(conninfo: adminURL)
        try admin.simpleQuery("CREATE DATABASE \(try admin.escapeIdentifier(name))")
        defer { _ = try? admin.simpleQuery("DROP DATABASE \(try admin.escapeIdentifier(name)) WITH (FORCE)") }
        let url = replacingDatabase(in: adminURL, with: name)
        let pool = PostgresPool(configuration: PostgresPoolConfiguration(conninfo: url, maxConnections: maxConnections))
        defer { pool.close() }
        _ = try await Migrator(migrations: OrchestratorMigrations.all).migrate(using: pool)
        let store = try PostgresStore(pool: pool, conninfo: url, configuration: configuration)
        defer { store.close() }
        try await store.start()
        return try await body(store, pool)
    }

    /// A fresh database with only `migrations` applied, and no store: for tests of a migration
    /// itself (rows written as an older schema had them, then the next migration).
    static func withPool<T>(migrations: [Migration], _ body: (PostgresPool, String) async throws -> T) async throws -> T {
        let name = "store_\(UInt64.random(in: 0...UInt64.max))"
        let admin = try PostgresConnection(conninfo: adminURL)
        try admin.simpleQuery("CREATE DATABASE \(try admin.escapeIdentifier(name))")
        defer { _ = try? admin.simpleQuery("DROP DATABASE \(try admin.escapeIdentifier(name)) WITH (FORCE)") }
        let url = replacingDatabase(in: adminURL, with: name)
        let pool = PostgresPool(configuration: PostgresPoolConfiguration(conninfo: url, maxConnections: 2))
        defer { pool.close() }
        _ = try await Migrator(migrations: migrations).migrate(using: pool)
        return try await body(pool, url)
    }

    static func replacingDatabase(in url: String, with database: String) -> String {
        if url.hasPrefix("postgres://") || url.hasPrefix("postgresql://") {
            var components = URLComponents(string: url)!
            components.path = "/" + database
            return components.string!
        }
        return url + " dbname=\(database)"
    }

    static func freePort() -> Int { FreePort.pick() }
}
