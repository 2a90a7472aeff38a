import Foundation
import OrchestratorApp
import PostgresClient

/// `EventStore` in PostgreSQL: the `workflow_events` log, read in sequence order.
public struct PostgresEventStore: EventStore {
    let context: StoreContext

    public init(pool: PostgresPool, configuration: StoreConfiguration = StoreConfiguration()) {
        context = StoreContext(pool: pool, configuration: configuration)
    }

    /// Events after `afterSequence`, oldest first.
    ///
    /// Sequence numbers are taken when a row is inserted, not when its transaction commits, so a
    /// reader could see 10 before 9 commits and, resuming after 10, never see 9. Migration 0006
    /// prevents that at the source: every append takes a transaction-level advisory lock held to
    /// commit, so numbers are handed out in commit order and what any snapshot sees is a gap-free
    /// prefix of what will ever be there. A watcher that resumes after the last sequence it saw
    /// loses nothing, and nothing outside this database's event appends can hold readers back.
    ///
    /// Index: workflow_events_workflow_seq_idx (workflow_id, seq) for one workflow, the primary
    /// key (seq) otherwise.
    public func events(_ query: EventQuery) async throws -> [StoredEvent] {
        try await context.read { session in
            let rows = try await session.query(
                """
                SELECT \(EventRow.columns)
                  FROM workflow_events e JOIN workflows w ON w.id = e.workflow_id
                 WHERE e.seq > $1
                   AND ($2::text IS NULL OR e.workflow_id = $2)
                   AND ($3::text IS NULL OR w.tenant = $3)
                 ORDER BY e.seq
                 LIMIT $4
                """, [query.afterSequence, query.workflowID, query.tenant, max(1, min(query.limit, 10_000))])
            let decoder = JSONDecoder()
            return try rows.map { try EventRow.decode($0, decoder: decoder) }
        }
    }

    /// Index: the primary key (seq), read backwards.
    /// Appends serialise on the event-order lock from their first sequence to their commit
    /// (migration 0006): no sequence becomes visible before a smaller one that will commit.
    public var sequencesBecomeVisibleInOrder: Bool { true }

    public func latestSequence() async throws -> Int64? {
        try await context.read { session in
            try await session.query("SELECT coalesce(max(seq), 0)::int8 AS seq FROM workflow_events").first?.decode(Int64.self, column: "seq")
        }
    }
}
