import PostgresClient

/// The schema migrations shipped with this binary, in order.
///
/// The SQL files in `Migrations/` are compiled into the binary by SwiftPM (`embedInCode` in
/// Package.swift) as `PackageResources` byte arrays, so orchestratord needs no resource bundle on
/// disk: copying the executable is enough. SwiftPM names each array after its file with a leading
/// digit replaced by `_` (`0001_initial.sql` → `_001_initial_sql`), and a type's static members
/// cannot be enumerated, so each file is registered here by hand; a test
/// (`MigrationFilesTests`) fails when a file in `Migrations/` is missing from this list.
///
/// Rules for migration files: never edit one that has been released (the server refuses to start
/// when an applied migration's checksum changed); add the next number instead. No transaction
/// control statements inside (each file already runs in its own transaction), hence no
/// `CREATE INDEX CONCURRENTLY`.
public enum OrchestratorMigrations {
    public static let all: [Migration] = [
        migration(1, "0001_initial.sql", PackageResources._001_initial_sql),
        migration(2, "0002_repositories.sql", PackageResources._002_repositories_sql),
        migration(3, "0003_task_deadlines.sql", PackageResources._003_task_deadlines_sql),
        migration(4, "0004_audit.sql", PackageResources._004_audit_sql),
        migration(5, "0005_bulk_graphs.sql", PackageResources._005_bulk_graphs_sql),
        migration(6, "0006_event_order.sql", PackageResources._006_event_order_sql),
        migration(7, "0007_lean_events.sql", PackageResources._007_lean_events_sql),
        migration(8, "0008_queue_vacuum.sql", PackageResources._008_queue_vacuum_sql),
        migration(9, "0009_lean_tasks.sql", PackageResources._009_lean_tasks_sql),
        migration(10, "0010_lean_attempts.sql", PackageResources._010_lean_attempts_sql),
        migration(11, "0011_trace_state.sql", PackageResources._011_trace_state_sql),
        migration(12, "0012_resumed_by.sql", PackageResources._012_resumed_by_sql),
        migration(13, "0013_drop_executors.sql", PackageResources._013_drop_executors_sql),
        migration(14, "0014_claim_by_capabilities.sql", PackageResources._014_claim_by_capabilities_sql),
        migration(15, "0015_query_summaries.sql", PackageResources._015_query_summaries_sql),
        migration(16, "0016_task_counts_index.sql", PackageResources._016_task_counts_index_sql),
        migration(17, "0017_retention.sql", PackageResources._017_retention_sql),
    ]

    private static func migration(_ version: Int, _ name: String, _ bytes: [UInt8]) -> Migration {
        Migration(version: version, name: name, sql: String(decoding: bytes, as: UTF8.self))
    }
}
