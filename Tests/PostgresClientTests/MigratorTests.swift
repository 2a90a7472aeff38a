import Foundation
import Testing

@testable import PostgresClient

@Suite("Migrations")
struct MigratorTests {
    static let first = Migration(version: 1, name: "0001_things.sql", sql: "CREATE TABLE things (id int PRIMARY KEY, label text NOT NULL);")
    static let second = Migration(
        version: 2, name: "0002_seed.sql",
        sql: "ALTER TABLE things ADD COLUMN weight int;\nINSERT INTO things VALUES (1, 'seeded', 7);\nSELECT pg_sleep(0.2);")

    static func appliedVersions(_ pool: PostgresPool) async throws -> [Int] {
        try await pool.withConnection { session in
            try await session.query("SELECT version FROM schema_migrations ORDER BY version").map {
                try $0.decode(Int.self, column: "version")
            }
        }
    }

    @Test func appliedOnceThenIdempotent() async throws {
        try await TestDatabase.withPool { pool in
            let migrator = Migrator(migrations: [Self.second, Self.first])  // order comes from the versions
            let firstRun = try await migrator.migrate(using: pool)
            #expect(firstRun.applied == [1, 2])
            #expect(firstRun.alreadyApplied == [])
            let secondRun = try await migrator.migrate(using: pool)
            #expect(secondRun.applied == [])
            #expect(secondRun.alreadyApplied == [1, 2])
            let recorded = try await pool.withConnection { session in
                try await session.query("SELECT name, checksum FROM schema_migrations ORDER BY version").map {
                    (try $0.decode(String.self, column: "name"), try $0.decode(String.self, column: "checksum"))
                }
            }
            #expect(recorded.map(\.0) == ["0001_things.sql", "0002_seed.sql"])
            #expect(recorded.map(\.1) == [Self.first.checksum, Self.second.checksum])
            let seeded = try await pool.withConnection {
                try await $0.query("SELECT count(*) AS n FROM things")[0].decode(Int.self, column: "n")
            }
            #expect(seeded == 1)
        }
    }

    @Test func concurrentMigratorsApplyEachMigrationOnce() async throws {
        try await TestDatabase.withDatabase { url in
            // Two "servers": separate pools, starting at the same moment.
            let poolA = PostgresPool(configuration: PostgresPoolConfiguration(conninfo: url, maxConnections: 2))
            let poolB = PostgresPool(configuration: PostgresPoolConfiguration(conninfo: url, maxConnections: 2))
            defer {
                poolA.close()
                poolB.close()
            }
            let migrator = Migrator(migrations: [Self.first, Self.second])
            async let reportA = migrator.migrate(using: poolA)
            async let reportB = migrator.migrate(using: poolB)
            let reports = try await [reportA, reportB]
            #expect(reports.map(\.applied).sorted { $0.count < $1.count } == [[], [1, 2]])
            #expect(try await Self.appliedVersions(poolA) == [1, 2])
            let seeded = try await poolA.withConnection {
                try await $0.query("SELECT count(*) AS n FROM things")[0].decode(Int.self, column: "n")
            }
            #expect(seeded == 1)
        }
    }

    @Test func editedMigrationIsRefused() async throws {
        try await TestDatabase.withPool { pool in
            try await Migrator(migrations: [Self.first]).migrate(using: pool)
            var edited = Self.first
            edited.sql += "\n-- a harmless-looking edit"
            let error = await #expect(throws: MigrationError.self) {
                try await Migrator(migrations: [edited, Self.second]).migrate(using: pool)
            }
            guard case .checksumMismatch(let version, let name, let recorded, let current) = error else {
                Issue.record("expected checksumMismatch, got \(String(describing: error))")
                return
            }
            #expect(version == 1)
            #expect(name == "0001_things.sql")
            #expect(recorded == Self.first.checksum)
            #expect(current == edited.checksum)
            #expect(error?.description.contains("0001_things.sql") == true)
            // Nothing after the edited migration ran.
            #expect(try await Self.appliedVersions(pool) == [1])
        }
    }

    @Test func failingMigrationRollsBackAndReleasesTheLock() async throws {
        try await TestDatabase.withPool { pool in
            let broken = Migration(version: 2, name: "0002_broken.sql", sql: "CREATE TABLE half (id int);\nSELECT 1 / 0;")
            let error = await #expect(throws: MigrationError.self) {
                try await Migrator(migrations: [Self.first, broken]).migrate(using: pool)
            }
            guard case .failed(let version, let name, _) = error else {
                Issue.record("expected failed, got \(String(describing: error))")
                return
            }
            #expect(version == 2 && name == "0002_broken.sql")
            #expect(try await Self.appliedVersions(pool) == [1])
            let half = try await pool.withConnection {
                try await $0.query("SELECT to_regclass('half') IS NULL AS gone")[0].decode(Bool.self, column: "gone")
            }
            #expect(half)
            // The advisory lock was released: a fixed list applies at once.
            let report = try await Migrator(migrations: [Self.first, Self.second]).migrate(using: pool)
            #expect(report.applied == [2])
        }
    }

    @Test func unknownAppliedMigrationIsRefused() async throws {
        try await TestDatabase.withPool { pool in
            try await Migrator(migrations: [Self.first, Self.second]).migrate(using: pool)
            let error = await #expect(throws: MigrationError.self) { try await Migrator(migrations: [Self.first]).migrate(using: pool) }
            #expect(error == .unknownAppliedMigration(version: 2, name: "0002_seed.sql"))
        }
    }

    @Test func duplicateVersionsAreRejected() async throws {
        try await TestDatabase.withPool { pool in
            let error = await #expect(throws: MigrationError.self) {
                try await Migrator(migrations: [Self.first, Migration(version: 1, name: "again.sql", sql: "")]).migrate(using: pool)
            }
            #expect(error == .invalidMigrationList("version 1 appears twice"))
        }
    }

    @Test func sha256MatchesKnownVectors() {
        #expect(SHA256.hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256.hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(
            SHA256.hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        #expect(SHA256.hex(String(repeating: "a", count: 1_000)) == "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3")
    }
}

/// The migrations shipped in Sources/OrchestratorStore/Migrations, read from the source tree.
@Suite("Shipped migrations")
struct ShippedMigrationTests {
    static let folder = URL(fileURLWithPath: #filePath).resolvingSymlinksInPath()
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Sources/OrchestratorStore")

    static func load() throws -> [Migration] {
        let directory = folder.appendingPathComponent("Migrations")
        return try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".sql") }.sorted().map { name in
            let version = Int(name.prefix { $0.isNumber })!
            return Migration(
                version: version, name: name, sql: try String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8))
        }
    }

    @Test func everyFileIsRegisteredInMigrationsSwift() throws {
        let registry = try String(contentsOf: Self.folder.appendingPathComponent("Migrations.swift"), encoding: .utf8)
        for migration in try Self.load() {
            // SwiftPM's embedInCode name: the file name with '.' → '_' and a leading digit → '_'.
            let resource = "_" + migration.name.dropFirst().replacingOccurrences(of: ".", with: "_")
            #expect(
                registry.contains("migration(\(migration.version), \"\(migration.name)\", PackageResources.\(resource))"),
                "\(migration.name)")
        }
    }

    @Test func shippedMigrationsApplyTwiceCleanly() async throws {
        let migrations = try Self.load()
        #expect(migrations.first?.name == "0001_initial.sql")
        try await TestDatabase.withPool { pool in
            let migrator = Migrator(migrations: migrations)
            #expect(try await migrator.migrate(using: pool).applied == migrations.map(\.version))
            #expect(try await migrator.migrate(using: pool).applied == [])
            let tables = try await pool.withConnection { session in
                try await session.query(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name"
                ).map { try $0.decode(String.self, column: "table_name") }
            }
            for table in [
                "dag_versions", "edges", "queries", "schema_migrations", "task_attempts", "tasks", "workflow_events", "workflows",
            ] {
                #expect(tables.contains(table), "\(table)")
            }
            // Created by 0001, never used, dropped by 0013.
            #expect(!tables.contains("executors"))
        }
    }
}
