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
    /// reader could see 10 before 9 commits and, resuming after 10, never see 9. Every read
    /// therefore returns only events of transactions older than every transaction still running
    /// (`txid < pg_snapshot_xmin(pg_current_snapshot())`): what it returns is a gap-free prefix of
    /// what will ever be there, and a watcher that resumes after the last sequence it saw loses
    /// nothing. The price: a long transaction (a 100,000-task submission) delays everyone's events
    /// until it ends.
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
                   AND e.txid < pg_snapshot_xmin(pg_current_snapshot())
                 ORDER BY e.seq
                 LIMIT $4
                """, [query.afterSequence, query.workflowID, query.tenant, max(1, min(query.limit, 10_000))])
            let decoder = JSONDecoder()
            return try rows.map { try EventRow.decode($0, decoder: decoder) }
        }
    }
}
