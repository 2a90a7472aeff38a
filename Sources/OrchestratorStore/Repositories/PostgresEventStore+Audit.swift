import Foundation
import OrchestratorApp
import PostgresClient

extension PostgresEventStore: AuditLog {
    /// The audit trail: events matching every filter, oldest first, after the visibility horizon
    /// check `events(_:)` documents (a page never skips an event that commits late).
    ///
    /// One statement for every combination of filters: parameters are bound with `PQexecParams`,
    /// which plans each execution with its values, so the `$n IS NULL OR …` arms of absent filters
    /// fold away and the remaining ones pick the index. Indexes: workflow_events_workflow_seq_idx
    /// (workflow_id, seq) with a workflow; workflow_events_actor_seq_idx ((actor ->> 'subject'), seq)
    /// with an actor; the primary key (seq) otherwise, with workflow_events_at_brin_idx narrowing
    /// a time window.
    public func auditEvents(_ query: AuditQuery) async throws -> [StoredEvent] {
        try await context.read { session in
            let rows = try await session.query(
                """
                SELECT \(EventRow.columns)
                  FROM workflow_events e JOIN workflows w ON w.id = e.workflow_id
                 WHERE e.seq > $1
                   AND ($2::text IS NULL OR e.workflow_id = $2)
                   AND ($3::text IS NULL OR w.tenant = $3)
                   AND ($4::text IS NULL OR (e.actor IS NOT NULL AND (e.actor ->> 'subject') = $4))
                   AND (cardinality($5::text[]) = 0 OR e.type = ANY($5::text[]))
                   AND ($6::timestamptz IS NULL OR e.at >= $6)
                   AND ($7::timestamptz IS NULL OR e.at < $7)
                 ORDER BY e.seq
                 LIMIT $8
                """,
                [
                    query.afterSequence, query.workflowID, query.tenant, query.actorSubject, query.kinds.map(\.rawValue).sorted(),
                    query.since?.sqlTimestamp, query.until?.sqlTimestamp, Int64(max(1, min(query.limit, 10_001))),
                ])
            let decoder = JSONDecoder()
            return try rows.map { try EventRow.decode($0, decoder: decoder) }
        }
    }
}

extension PostgresStore: AuditLog {
    public func auditEvents(_ query: AuditQuery) async throws -> [StoredEvent] { try await eventLog.auditEvents(query) }
}
