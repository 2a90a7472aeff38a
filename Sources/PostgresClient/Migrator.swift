import Logging

/// One schema migration: a numbered SQL script.
public struct Migration: Sendable, Equatable {
    /// Position in the order of application; unique, from 1.
    public var version: Int
    /// The file it came from, e.g. `0001_initial.sql` (named in errors and recorded in the table).
    public var name: String
    public var sql: String

    public init(version: Int, name: String, sql: String) {
        self.version = version
        self.name = name
        self.sql = sql
    }

    /// SHA-256 of the SQL text, hex. Recorded when applied and compared on every start.
    public var checksum: String { SHA256.hex(sql) }
}

/// Why migrations were refused or failed.
public enum MigrationError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A migration already applied to this database has different SQL now: an edited file.
    case checksumMismatch(version: Int, name: String, recorded: String, current: String)
    /// The database has a migration this program does not know (a newer version ran against it).
    case unknownAppliedMigration(version: Int, name: String)
    /// Two migrations share a version, or a version is below 1.
    case invalidMigrationList(String)
    /// A migration's SQL failed; it was rolled back.
    case failed(version: Int, name: String, message: String)

    public var description: String {
        switch self {
        case .checksumMismatch(let version, let name, let recorded, let current):
            "migration \(version) (\(name)) was edited after it was applied: checksum \(current) differs from the recorded \(recorded); add a new migration instead"
        case .unknownAppliedMigration(let version, let name):
            "the database has migration \(version) (\(name)), which this program does not ship; it is older than the schema"
        case .invalidMigrationList(let reason):
            "invalid migration list: \(reason)"
        case .failed(let version, let name, let message):
            "migration \(version) (\(name)) failed and was rolled back: \(message)"
        }
    }
}

/// Applies numbered migrations, safely when several processes start at once.
///
/// Under a session advisory lock (so concurrent migrators run one after another), it creates
/// `schema_migrations` if needed, checks that every applied migration still has the checksum it
/// was applied with, and applies the pending ones in order, each in its own transaction together
/// with its `schema_migrations` row, so a migration is either fully applied and recorded or not at
/// all.
public struct Migrator: Sendable {
    /// The advisory-lock key all migrators agree on ("orchmigr" in ASCII).
    public static let lockKey: Int64 = 0x6f72_6368_6d69_6772

    public let migrations: [Migration]
    let logger: Logger

    public init(migrations: [Migration], logger: Logger = Logger(label: "postgres.migrator")) {
        self.migrations = migrations.sorted { $0.version < $1.version }
        self.logger = logger
    }

    /// What one run did.
    public struct Report: Sendable, Equatable {
        /// Versions applied by this run, in order.
        public var applied: [Int]
        /// Versions found already applied (with matching checksums).
        public var alreadyApplied: [Int]
    }

    /// Brings the database up to date.
    /// - Throws: `MigrationError` for an edited, unknown or failing migration; `PostgresError`
    ///   when the database cannot be reached.
    @discardableResult
    public func migrate(using pool: PostgresPool) async throws -> Report {
        try validate()
        return try await pool.withConnection { session in
            try await session.query("SELECT pg_advisory_lock($1)", [Self.lockKey])
            do {
                let report = try await migrateLocked(session)
                try await session.query("SELECT pg_advisory_unlock($1)", [Self.lockKey])
                return report
            } catch {
                _ = try? await session.query("SELECT pg_advisory_unlock($1)", [Self.lockKey])
                throw error
            }
        }
    }

    private func validate() throws {
        var seen: Set<Int> = []
        for migration in migrations {
            if migration.version < 1 {
                throw MigrationError.invalidMigrationList("version \(migration.version) of \(migration.name) is below 1")
            }
            if !seen.insert(migration.version).inserted {
                throw MigrationError.invalidMigrationList("version \(migration.version) appears twice")
            }
        }
    }

    private func migrateLocked(_ session: PostgresSession) async throws -> Report {
        try await session.simpleQuery(
            """
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version    integer PRIMARY KEY,
                name       text NOT NULL,
                checksum   text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )
            """)
        let rows = try await session.query("SELECT version, name, checksum FROM schema_migrations ORDER BY version")
        var applied: [Int: (name: String, checksum: String)] = [:]
        for row in rows {
            applied[try row.decode(Int.self, column: "version")] = (try row.decode(column: "name"), try row.decode(column: "checksum"))
        }
        let known = Dictionary(uniqueKeysWithValues: migrations.map { ($0.version, $0) })
        for (version, record) in applied.sorted(by: { $0.key < $1.key }) {
            guard let migration = known[version] else {
                throw MigrationError.unknownAppliedMigration(version: version, name: record.name)
            }
            if migration.checksum != record.checksum {
                throw MigrationError.checksumMismatch(
                    version: version, name: migration.name, recorded: record.checksum, current: migration.checksum)
            }
        }
        var report = Report(applied: [], alreadyApplied: applied.keys.sorted())
        for migration in migrations where applied[migration.version] == nil {
            try await apply(migration, session)
            report.applied.append(migration.version)
        }
        return report
    }

    private func apply(_ migration: Migration, _ session: PostgresSession) async throws {
        logger.info("applying migration", metadata: ["version": "\(migration.version)", "name": "\(migration.name)"])
        do {
            try await session.runTransaction(isolation: .readCommitted) { session in
                try await session.simpleQuery(migration.sql)
                try await session.query(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    [Int32(migration.version), migration.name, migration.checksum])
            }
        } catch let error as PostgresError where !error.isConnectionLoss {
            throw MigrationError.failed(version: migration.version, name: migration.name, message: error.description)
        }
    }
}
