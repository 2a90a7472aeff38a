import Foundation
import Logging
import Synchronization
import TestSupport
import Testing

@testable import PostgresClient

/// Where the tests' databases come from: `ORCHESTRATOR_TEST_DATABASE_URL` (set by tools/test), or
/// else one embedded cluster per test process, in a temporary folder, stopped at exit. Every test
/// gets a database of its own (`test_<random>`), dropped afterwards, so tests run in parallel.
enum TestDatabase {
    /// The URL of a database on the server that tests may create databases on. Computed once,
    /// off the cooperative pool (starting a cluster blocks for a second or two).
    static var adminURL: String {
        get async throws { try await adminURLTask.value }
    }

    private static let adminURLTask = Task { try await offload { try makeAdminURL() } }

    /// Admin connections (CREATE/DROP DATABASE) go through a pool like everything else, so tests
    /// never block the cooperative pool themselves.
    private static let adminPoolTask = Task {
        PostgresPool(configuration: PostgresPoolConfiguration(conninfo: try await adminURL, maxConnections: 2))
    }

    /// Runs blocking work on a thread of its own.
    @discardableResult
    static func offload<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        let thread = DatabaseThread(name: "test-offload")
        defer { thread.shutdown() }
        return try await thread.run(body)
    }

    private static func makeAdminURL() throws -> String {
        if let url = ProcessInfo.processInfo.environment["ORCHESTRATOR_TEST_DATABASE_URL"], !url.isEmpty { return url }
        let cluster = try startCluster(name: "shared")
        sharedCluster = cluster
        atexit {
            guard let cluster = TestDatabase.sharedCluster else { return }
            try? cluster.stop()
            try? FileManager.default.removeItem(at: cluster.dataDirectory.deletingLastPathComponent())
        }
        return cluster.url(database: "postgres")
    }

    nonisolated(unsafe) static var sharedCluster: EmbeddedPostgres?

    /// A fresh throwaway cluster (tests that restart the server get their own).
    static func startCluster(name: String) throws -> EmbeddedPostgres {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent(
            "orch-pg-\(name)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        let cluster = EmbeddedPostgres(
            dataDirectory: folder.appendingPathComponent("data"), port: freePort(), database: "postgres", durable: false)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try cluster.start()
        return cluster
    }

    /// Runs `body` with a fresh throwaway cluster, then stops and deletes it. Starting and stopping
    /// run on a thread of their own: `pg_ctl` blocks for seconds, and on the cooperative pool (two
    /// threads on a 2-core machine) that starves every test running in parallel.
    static func withCluster<T>(name: String, _ body: (EmbeddedPostgres) async throws -> T) async throws -> T {
        let cluster = try await offload { try startCluster(name: name) }
        let discard = {
            _ = try? await offload {
                try? cluster.stop()
                try? FileManager.default.removeItem(at: cluster.dataDirectory.deletingLastPathComponent())
            }
        }
        do {
            let result = try await body(cluster)
            await discard()
            return result
        } catch {
            await discard()
            throw error
        }
    }

    /// Creates a database, runs `body` with its URL, drops it.
    static func withDatabase<T>(_ body: (String) async throws -> T) async throws -> T {
        // Random lower-case names need no quoting.
        let name = "test_\(UInt64.random(in: 0...UInt64.max))"
        let admin = try await adminPoolTask.value
        try await admin.withConnection { try await $0.simpleQuery("CREATE DATABASE \(name)") }
        let url = replacingDatabase(in: try await adminURL, with: name)
        do {
            let result = try await body(url)
            try await admin.withConnection { try await $0.simpleQuery("DROP DATABASE \(name) WITH (FORCE)") }
            return result
        } catch {
            _ = try? await admin.withConnection { try await $0.simpleQuery("DROP DATABASE \(name) WITH (FORCE)") }
            throw error
        }
    }

    /// Creates a database and a pool on it, runs `body`, closes the pool and drops the database.
    static func withPool<T>(maxConnections: Int = 4, _ body: (PostgresPool) async throws -> T) async throws -> T {
        try await withDatabase { url in
            let pool = PostgresPool(configuration: PostgresPoolConfiguration(conninfo: url, maxConnections: maxConnections))
            defer { pool.close() }
            return try await body(pool)
        }
    }

    /// The same URL with another database name (URL or keyword/value form).
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
