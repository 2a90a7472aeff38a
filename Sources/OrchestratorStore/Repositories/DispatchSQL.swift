/// The dispatch hot path's statements, in one place, each with the index that serves it.
enum DispatchSQL {
    /// Makes retries whose backoff elapsed claimable (retry_wait → ready), with task_ready events.
    /// Index: tasks_retry_due_idx (next_attempt_at) WHERE state = 'retry_wait' — an empty probe
    /// when nothing is due. $1 now, $2 aging bucket of now, $3 limit.
    static let promoteDueRetries = """
        WITH due AS (
            SELECT id FROM tasks
             WHERE state = 'retry_wait' AND next_attempt_at <= $1
             ORDER BY next_attempt_at
             LIMIT $3
               FOR NO KEY UPDATE SKIP LOCKED
        ), promoted AS (
            UPDATE tasks t
               SET state = 'ready', ready_at = $1, dispatch_priority = t.priority - $2, next_attempt_at = NULL, updated_at = $1
              FROM due
             WHERE t.id = due.id
         RETURNING t.id, t.key, t.attempt, t.workflow_id
        ), events AS (
            INSERT INTO workflow_events (workflow_id, type, at, task_id, task_key, task_state, attempt, trace_id)
            SELECT p.workflow_id, 'task_ready', $1, p.id, p.key, 'ready', p.attempt, w.trace_id
              FROM promoted p JOIN workflows w ON w.id = p.workflow_id
            RETURNING 1
        )
        SELECT count(*) AS promoted FROM events
        """

    /// Claims up to $6 ready tasks whose required capabilities the executor has, most urgent first,
    /// skipping rows other claimers hold: one statement that picks, leases, records the attempt and
    /// appends task_leased events.
    ///
    /// Order: `dispatch_priority DESC` (= priority + aging: priority − floor(ready_at / interval),
    /// so every interval waited is worth one priority level), then critical-path rank, then age.
    /// Index: tasks_claim_idx (dispatch_priority DESC, rank DESC, ready_at, id) WHERE state =
    /// 'ready' — the scan walks the queue in claim order and stops after $6 matching rows; the
    /// capability and tenant filters are checked on the rows it walks (docs/SCHEMA.md shows the plan).
    ///
    /// $1 now, $2 executor, $3 capabilities, $4 tenants (NULL = all), $5 lease TTL (ms), $6 limit.
    static let claim = """
        WITH picked AS (
            SELECT t.id FROM tasks t
             WHERE t.state = 'ready'
               AND t.required_capabilities <@ $3::text[]
               AND ($4::text[] IS NULL
                    OR EXISTS (SELECT 1 FROM workflows w WHERE w.id = t.workflow_id AND w.tenant = ANY($4::text[])))
             ORDER BY t.dispatch_priority DESC, t.rank DESC, t.ready_at, t.id
             LIMIT $6
               FOR NO KEY UPDATE SKIP LOCKED
        ), leased AS (
            UPDATE tasks t
               SET state = 'leased', attempt = t.attempt + 1, fencing_token = t.attempt + 1, lease_owner = $2,
                   lease_expires_at = $1 + $5 * interval '1 millisecond', lease_ttl_ms = $5,
                   -- start_to_close: this attempt must finish within the task's timeout (0003).
                   deadline_at = $1 + (t.metadata ->> 'timeoutSeconds')::bigint * interval '1 second',
                   started_at = coalesce(t.started_at, $1), updated_at = $1
              FROM picked
             WHERE t.id = picked.id
         RETURNING t.*
        ), attempts AS (
            INSERT INTO task_attempts (task_id, attempt, executor_id, fencing_token, leased_at)
            SELECT id, attempt, $2, fencing_token, $1 FROM leased
        ), events AS (
            INSERT INTO workflow_events (workflow_id, type, at, task_id, task_key, task_state, attempt, executor_id, trace_id)
            SELECT l.workflow_id, 'task_leased', $1, l.id, l.key, 'leased', l.attempt, $2, w.trace_id
              FROM leased l JOIN workflows w ON w.id = l.workflow_id
        )
        SELECT \(TaskRow.columns)
          FROM leased t JOIN workflows w ON w.id = t.workflow_id
         ORDER BY t.dispatch_priority DESC, t.rank DESC, t.ready_at, t.id
        """

    /// Results of the upstream tasks of the claimed tasks. Index: edges_downstream_idx, then
    /// tasks_pkey per edge. The lateral subquery (`OFFSET 0` keeps it from being flattened) pins
    /// that nested loop: right after a big DAG is loaded, before autovacuum analyzed it, the
    /// planner otherwise picks a hash join over a sequential scan of `tasks`.
    static let upstreamResults = """
        SELECT e.downstream_task_id, u.key, u.result
          FROM edges e
         CROSS JOIN LATERAL (SELECT key, result FROM tasks WHERE id = e.upstream_task_id OFFSET 0) u
         WHERE e.downstream_task_id = ANY($1::uuid[])
        """

    /// The workflows' query inputs. Index: queries primary key.
    static let inputs = "SELECT workflow_id, inputs FROM queries WHERE workflow_id = ANY($1::text[])"

    /// Heartbeats: pushes each lease still held by its executor with that token to its `until`
    /// (never backwards). One statement for the whole batch. Index: tasks primary key.
    /// $1 task ids, $2 tokens, $3 executors, $4 until, $5 now.
    static let extendLeases = """
        WITH request AS (
            SELECT * FROM unnest($1::uuid[], $2::int8[], $3::text[], $4::timestamptz[]) AS r(id, token, executor, until)
        ), extended AS (
            UPDATE tasks t
               SET lease_expires_at = greatest(t.lease_expires_at, r.until), updated_at = $5
              FROM request r
             WHERE t.id = r.id AND t.fencing_token = r.token AND t.lease_owner = r.executor
               AND t.state IN ('leased', 'running')
         RETURNING t.id, t.fencing_token, t.lease_expires_at
        )
        SELECT r.id, r.token, x.lease_expires_at
          FROM request r LEFT JOIN extended x ON x.id = r.id AND x.fencing_token = r.token
        """

    /// Leases that lapsed before $1, oldest first, skipping rows another reaper holds.
    /// Index: tasks_lease_expiry_idx (lease_expires_at) WHERE state IN ('leased', 'running').
    static let expiredLeases = """
        SELECT t.id, t.workflow_id, t.key, t.attempt, t.max_attempts, t.fencing_token, t.lease_owner, t.metadata, w.trace_id
          FROM tasks t JOIN workflows w ON w.id = t.workflow_id
         WHERE t.id IN (SELECT id FROM tasks
                         WHERE state IN ('leased', 'running') AND lease_expires_at < $1
                         ORDER BY lease_expires_at
                         LIMIT $2
                           FOR NO KEY UPDATE SKIP LOCKED)
        """

    /// Attempts that ran past their start_to_close timeout before $1, earliest deadline first,
    /// skipping rows another reaper holds. Index: tasks_deadline_idx (deadline_at) WHERE state IN
    /// ('leased', 'running') AND deadline_at IS NOT NULL.
    static let timedOutAttempts = """
        SELECT t.id, t.workflow_id, t.key, t.attempt, t.max_attempts, t.fencing_token, t.lease_owner, t.metadata, w.trace_id
          FROM tasks t JOIN workflows w ON w.id = t.workflow_id
         WHERE t.id IN (SELECT id FROM tasks
                         WHERE state IN ('leased', 'running') AND deadline_at IS NOT NULL AND deadline_at < $1
                         ORDER BY deadline_at
                         LIMIT $2
                           FOR NO KEY UPDATE SKIP LOCKED)
        """

    /// Leases an executor gives back, when still held with those tokens. Index: tasks primary key.
    static let heldLeases = """
        SELECT t.id, t.workflow_id, t.key, t.attempt, t.max_attempts, t.fencing_token, t.lease_owner, t.metadata, w.trace_id
          FROM tasks t JOIN workflows w ON w.id = t.workflow_id
         WHERE t.id IN (SELECT r.id FROM unnest($1::uuid[], $2::int8[]) AS r(id, token)
                          JOIN tasks x ON x.id = r.id AND x.fencing_token = r.token)
           AND t.lease_owner = $3 AND t.state IN ('leased', 'running')
         ORDER BY t.id
           FOR NO KEY UPDATE OF t
        """

    /// Requeues or fails lost leases in one statement. $1 ids, $2 new states ('ready',
    /// 'retry_wait' or 'failed'), $3 next attempt instants, $4 errors (jsonb text), $5 now, $6 aging
    /// bucket, $7 the attempts' outcome.
    static let settleLostLeases = """
        WITH request AS (
            SELECT * FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::text[]) AS r(id, state, next_at, error)
        ), settled AS (
            UPDATE tasks t
               SET state = r.state, lease_owner = NULL, lease_expires_at = NULL,
                   next_attempt_at = CASE WHEN r.state = 'retry_wait' THEN r.next_at END,
                   ready_at = CASE WHEN r.state = 'ready' THEN $5 ELSE t.ready_at END,
                   dispatch_priority = CASE WHEN r.state = 'ready' THEN t.priority - $6 ELSE t.dispatch_priority END,
                   finished_at = CASE WHEN r.state = 'failed' THEN $5 END,
                   last_error = r.error::jsonb, updated_at = $5
              FROM request r
             WHERE t.id = r.id
         RETURNING t.id, t.attempt, r.error
        )
        UPDATE task_attempts a SET outcome = $7, finished_at = $5, error = s.error::jsonb
          FROM settled s
         WHERE a.task_id = s.id AND a.attempt = s.attempt
        """
}
