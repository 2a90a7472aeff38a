import Foundation
import OrchestratorApp
import PostgresClient

extension PostgresDispatchStore {
    /// Extends the presented leases that are still held, like `extendLeases`, and records a
    /// task_lease_resumed event for each (with the transaction's audit cause), in one transaction.
    /// Rare (once per reconnect), so it stays out of the batched heartbeat path. Records
    /// `sessionID` as the attempt's holder (`task_attempts.resumed_by`): the stream the executor
    /// left, on this server or another, no longer gives the lease back when it ends.
    public func resumeLeases(_ extensions: [LeaseExtension], sessionID: String, now: UnixMillis) async throws -> [LeaseState] {
        let wellFormed = extensions.filter { UUID(uuidString: $0.lease.taskID) != nil }
        var held: [LeaseToken: (expiry: UnixMillis, workflowID: String?, traceID: String?)] = [:]
        if !wellFormed.isEmpty {
            let rows = try await context.transaction { transaction in
                let rows = try await transaction.query(
                    Self.resumeSQL,
                    [
                        wellFormed.map { UUID(uuidString: $0.lease.taskID)! }, wellFormed.map(\.lease.fencingToken),
                        wellFormed.map(\.executorID), wellFormed.map(\.until.sqlTimestamp), now.sqlTimestamp, transaction.causeActor,
                        transaction.causeTraceID, sessionID,
                    ])
                if rows.contains(where: { (try? $0.decode(Date?.self, column: "lease_expires_at")) != nil }) {
                    transaction.appendedEvents = true
                }
                return rows
            }
            for row in rows {
                guard let expiry = try row.decode(Date?.self, column: "lease_expires_at") else { continue }
                let lease = LeaseToken(taskID: try row.decode(String.self, column: "id"), fencingToken: try row.decode(Int64.self, column: "token"))
                held[lease] = (
                    expiry.unixMillis, try row.decode(String?.self, column: "workflow_id"), try row.decode(String?.self, column: "trace_id")
                )
            }
        }
        return extensions.map { item in
            let normalised = LeaseToken(taskID: item.lease.taskID.lowercased(), fencingToken: item.lease.fencingToken)
            let found = held[normalised]
            return LeaseState(
                lease: item.lease, valid: found != nil, expiresAt: found?.expiry, workflowID: found?.workflowID, traceID: found?.traceID)
        }
    }

    /// `DispatchSQL.extendLeases` plus the events and the attempts' new holder. Index: tasks and
    /// task_attempts primary keys. $1 task ids, $2 tokens, $3 executors, $4 until, $5 now, $6 actor
    /// (jsonb), $7 request trace id, $8 the resuming stream's session id.
    static let resumeSQL = """
        WITH request AS (
            SELECT * FROM unnest($1::uuid[], $2::int8[], $3::text[], $4::timestamptz[]) AS r(id, token, executor, until)
        ), extended AS (
            UPDATE tasks t
               SET lease_expires_at = greatest(t.lease_expires_at, r.until), updated_at = $5
              FROM request r
             WHERE t.id = r.id AND t.fencing_token = r.token AND t.lease_owner = r.executor
               AND t.state IN ('leased', 'running')
         RETURNING t.id, t.fencing_token, t.lease_expires_at, t.workflow_id, t.key, t.state, t.attempt, t.lease_owner
        ), events AS (
            INSERT INTO workflow_events (workflow_id, type, at, task_id, task_key, task_state, attempt, executor_id, message,
                                         trace_id, actor, request_trace_id)
            SELECT x.workflow_id, 'task_lease_resumed', $5, x.id, x.key, x.state, x.attempt, x.lease_owner,
                   'lease resumed on a new stream', w.trace_id, $6::jsonb, $7
              FROM extended x JOIN workflows w ON w.id = x.workflow_id
        ), holder AS (
            UPDATE task_attempts a SET resumed_by = $8
              FROM extended x
             WHERE a.task_id = x.id AND a.attempt = x.attempt
        )
        SELECT r.id, r.token, x.lease_expires_at, x.workflow_id, w.trace_id
          FROM request r LEFT JOIN extended x ON x.id = r.id AND x.fencing_token = r.token
          LEFT JOIN workflows w ON w.id = x.workflow_id
        """
}

extension PostgresStore {
    public func resumeLeases(_ extensions: [LeaseExtension], sessionID: String, now: UnixMillis) async throws -> [LeaseState] {
        try await dispatch.resumeLeases(extensions, sessionID: sessionID, now: now)
    }
}
