import OrchestratorDomain
import PostgresClient

/// The dispatch hot path's statements, in one place, each with the index that serves it.
enum DispatchSQL {
    /// Makes retries whose backoff elapsed claimable (retry_wait → ready); the caller appends their
    /// task_ready events with its others, last (`appendLast`). Any INSERT into workflow_events takes
    /// the event-order lock until commit (migration 0006) — even one inserting no rows, as the
    /// statement trigger fires regardless — so promoting with events in this statement held that
    /// lock across the whole claim transaction and serialised every claim and completion batch.
    /// Index: tasks_retry_due_idx (next_attempt_at) WHERE state = 'retry_wait' — an empty probe
    /// when nothing is due. $1 now, $2 aging bucket of now, $3 limit.
    static let promoteDueRetries = """
        WITH due AS (
            SELECT id FROM tasks
             WHERE state = 'retry_wait' AND next_attempt_at <= $1
             ORDER BY next_attempt_at
             LIMIT $3
               FOR NO KEY UPDATE SKIP LOCKED
        )
        UPDATE tasks t
           SET state = 'ready', ready_at = $1, dispatch_priority = t.priority - $2, next_attempt_at = NULL, updated_at = $1
          FROM due
         WHERE t.id = due.id
         RETURNING t.id, t.key, t.attempt, t.workflow_id
        """

    /// Settings of claim transactions: no sorts where an index gives the order. The claim must
    /// walk tasks_claim_idx (or a capability set's part of tasks_ready_by_capabilities_idx) in
    /// order and stop after $7 rows; with statistics from when the queue was small (a fresh table,
    /// or before autovacuum's next ANALYZE after a burst of submissions) the planner instead
    /// fetched every ready task through a bitmap scan of the index, dead entries included, and
    /// sorted them all to keep 8 — 6 ms per claim at 8,000 ready tasks, growing with the queue.
    /// Sorts with no alternative (the merge of the capability sets' rows, the window over the
    /// claimed rows, the final ORDER BY) still run. JIT off: the planner counts a disabled sort
    /// as very expensive, which alone crossed jit_above_cost and compiled every claim (~450 ms).
    /// The generic plan, always: the claim's branches are chosen at run time (one-time filters on
    /// its parameters), and its indexes by the order each walk asks for, so a plan for the given
    /// values buys nothing — but PostgreSQL kept making one per call when it costed the generic
    /// plan higher (1.7 ms of planning for 0.15 ms of execution, `pg_stat_statements` with
    /// `track_planning`); `ClaimByCapabilitiesTests` checks the generic plan's reads.
    static let claimSettings = [
        PostgresSetting("enable_sort", "off"), PostgresSetting("jit", "off"),
        PostgresSetting("plan_cache_mode", "force_generic_plan"),
    ]

    /// Claims ready tasks for several waiting executors that ask with the same capabilities and
    /// tenants (a batch of claims, `PostgresDispatchStore+ClaimBatch`), most urgent first, skipping
    /// rows other claimers hold: one statement that picks, leases and records the attempts (the
    /// batch appends the task_leased events last). The k-th task in dispatch order goes to slot k: `$2[k]` is its executor,
    /// `$6[k]` the index of the request it answers (slots interleave the requests round-robin, so
    /// each gets its share of the most urgent work).
    ///
    /// Order: `dispatch_priority DESC` (= priority + aging: priority − floor(ready_at / interval),
    /// so every interval waited is worth one priority level), then critical-path rank, then age.
    ///
    /// Which rows it reads (docs/SCHEMA.md, "Capability matching" and "Tenants"): `queued`
    /// lists the distinct capability sets of the ready queue, one probe of
    /// tasks_ready_by_capabilities_idx (required_capabilities, dispatch_priority DESC, rank DESC,
    /// ready_at, id) WHERE state = 'ready' per set (a loose index scan, migration 0014). When the
    /// executors can run every queued set, `walked` walks tasks_claim_idx (dispatch_priority DESC,
    /// rank DESC, ready_at, id) WHERE state = 'ready' in claim order and stops after $7 rows: no
    /// row it reads is wasted. When some queued set is not theirs (`strangers`: tasks of a pool
    /// that is offline, say), walking the whole queue would step over every such task on every
    /// claim, so `by_set` walks instead each runnable set's part of the new index in claim order,
    /// $7 unlocked rows at most per set, and keeps the $7 most urgent: reads and row locks follow
    /// the runnable sets times $7, not the depth of the queue. Rows of a set locked there but not
    /// kept stay locked until this short transaction commits; other claimers skip them meanwhile,
    /// as they skip any row a concurrent claim holds.
    ///
    /// Those three serve claims for every tenant ($4 NULL). A tenant-scoped claim takes the same
    /// per-set path on tasks_ready_by_tenant_idx (tenant, required_capabilities, …) instead:
    /// `tenant_queued` lists the sets each of its tenants has queued (and those of '' rows, whose
    /// tenant is not on the row: written by a 0.3.0 server, and checked against their workflow),
    /// `by_tenant_set` walks the runnable ones. Other tenants' tasks are never read.
    /// (Row locks cannot share a query level with a window function, hence `picked` then `numbered`.)
    ///
    /// Each row also carries what the assignment needs beyond the task: its upstream tasks' keys
    /// and results (`upstream_keys`, `upstream_results`, NULL without upstream tasks; edges_downstream_idx,
    /// then tasks_pkey per edge) and, on the first row of each workflow only, the query's inputs
    /// (queries primary key) — read by this statement rather than by another round trip after it.
    /// The upstream tasks are finished and never touched here, so the statement's snapshot is theirs.
    /// `OFFSET 0` keeps the per-edge lookup from being flattened: right after a big DAG is loaded,
    /// before autovacuum analyzed it, the planner otherwise picks a hash join over a sequential
    /// scan of `tasks`.
    ///
    /// $1 now, $2 slot executors, $3 capabilities, $4 tenants (NULL = all), $5 lease TTL (ms) of tasks without their own,
    /// $6 slot request indexes, $7 number of slots, $8 and $9 each slot's audit cause (actor jsonb
    /// text, request trace id; NULL for none).
    static let claim = """
        WITH RECURSIVE queued(capabilities) AS (
            (SELECT required_capabilities FROM tasks
              WHERE $4::text[] IS NULL AND state = 'ready' ORDER BY required_capabilities LIMIT 1)
            UNION ALL
            SELECT (SELECT t.required_capabilities FROM tasks t
                     WHERE t.state = 'ready' AND t.required_capabilities > queued.capabilities
                     ORDER BY t.required_capabilities LIMIT 1)
              FROM queued WHERE queued.capabilities IS NOT NULL
        ), strangers AS (
            SELECT EXISTS (SELECT 1 FROM queued WHERE NOT queued.capabilities <@ $3::text[]) AS present
        ), walked AS (
            SELECT t.id, t.dispatch_priority, t.rank, t.ready_at FROM tasks t
             WHERE $4::text[] IS NULL AND NOT (SELECT present FROM strangers)
               AND t.state = 'ready'
               AND t.required_capabilities <@ $3::text[]
             ORDER BY t.dispatch_priority DESC, t.rank DESC, t.ready_at, t.id
             LIMIT $7
               FOR NO KEY UPDATE SKIP LOCKED
        ), by_set AS (
            SELECT c.* FROM queued CROSS JOIN LATERAL (
                SELECT t.id, t.dispatch_priority, t.rank, t.ready_at FROM tasks t
                 WHERE t.state = 'ready'
                   -- "= queued.capabilities", written so that only tasks_ready_by_capabilities_idx
                   -- can give this walk its order: an equality made the set a constant of the
                   -- ORDER BY, and with the statistics of a long backlog the planner then walked
                   -- tasks_claim_idx with the set as a filter, every queued task read again
                   -- (tools/bench latency --backlog 50000). With a range, tasks_claim_idx would
                   -- need a sort, and claims run with sorts disabled.
                   AND t.required_capabilities >= queued.capabilities AND t.required_capabilities <= queued.capabilities
                 ORDER BY t.required_capabilities, t.dispatch_priority DESC, t.rank DESC, t.ready_at, t.id
                 LIMIT $7
                   FOR NO KEY UPDATE SKIP LOCKED) c
             WHERE (SELECT present FROM strangers) AND queued.capabilities <@ $3::text[]
        ), tenant_queued(tenant, capabilities) AS (
            -- Per tenant of the claim, and '' (tasks whose tenant is not on their row), the
            -- distinct capability sets it has queued. Ranges instead of equalities, as above:
            -- only tasks_ready_by_tenant_idx gives these orders.
            SELECT x.tenant, first.capabilities
              FROM (SELECT DISTINCT tenant FROM unnest(CASE WHEN $4::text[] IS NOT NULL THEN $4::text[] || ''::text END) AS u(tenant)) x
             CROSS JOIN LATERAL (
                   SELECT t.required_capabilities AS capabilities FROM tasks t
                    WHERE t.state = 'ready' AND t.tenant >= x.tenant AND t.tenant <= x.tenant
                    ORDER BY t.tenant, t.required_capabilities LIMIT 1) first
            UNION ALL
            SELECT q.tenant, next.capabilities FROM tenant_queued q
             CROSS JOIN LATERAL (
                   SELECT t.required_capabilities AS capabilities FROM tasks t
                    WHERE t.state = 'ready' AND t.tenant >= q.tenant AND t.tenant <= q.tenant
                      AND t.required_capabilities > q.capabilities
                    ORDER BY t.tenant, t.required_capabilities LIMIT 1) next
        ), by_tenant_set AS (
            SELECT c.* FROM tenant_queued q CROSS JOIN LATERAL (
                SELECT t.id, t.dispatch_priority, t.rank, t.ready_at FROM tasks t
                 WHERE t.state = 'ready'
                   AND t.tenant >= q.tenant AND t.tenant <= q.tenant
                   AND t.required_capabilities >= q.capabilities AND t.required_capabilities <= q.capabilities
                   AND (q.tenant <> ''
                        OR EXISTS (SELECT 1 FROM workflows w WHERE w.id = t.workflow_id AND w.tenant = ANY($4::text[])))
                 ORDER BY t.tenant, t.required_capabilities, t.dispatch_priority DESC, t.rank DESC, t.ready_at, t.id
                 LIMIT $7
                   FOR NO KEY UPDATE SKIP LOCKED) c
             WHERE q.capabilities <@ $3::text[]
        ), picked AS (
            SELECT id, dispatch_priority, rank, ready_at FROM walked
            UNION ALL
            SELECT id, dispatch_priority, rank, ready_at FROM (
                SELECT * FROM by_set UNION ALL SELECT * FROM by_tenant_set
                 ORDER BY dispatch_priority DESC, rank DESC, ready_at, id LIMIT $7) kept
        ), numbered AS (
            SELECT id, (row_number() OVER (ORDER BY dispatch_priority DESC, rank DESC, ready_at, id))::int4 AS n FROM picked
        ), assigned AS (
            -- The n-th task takes slot n: subscripts, not a join with the unnested slots, which
            -- the planner (one estimated row each side) ran as a nested loop, n² comparisons.
            SELECT numbered.id, ($2::text[])[numbered.n] AS owner, ($6::int4[])[numbered.n] AS request,
                   ($8::text[])[numbered.n] AS actor, ($9::text[])[numbered.n] AS trace
              FROM numbered
        ), leased AS (
            UPDATE tasks t
               SET state = 'leased', attempt = t.attempt + 1, fencing_token = t.attempt + 1, lease_owner = a.owner,
                   -- The task's own lease TTL (Timeouts.lease_ttl_ms, whole seconds), else the server's;
                   -- at most TaskSpec.maxLeaseTTLMillis, as TaskSpec.leaseTTLMillis (the column is int4).
                   lease_expires_at = $1 + least(coalesce((t.metadata ->> 'heartbeatTimeoutSeconds')::bigint * 1000, $5),
                                                 \(TaskSpec.maxLeaseTTLMillis)) * interval '1 millisecond',
                   lease_ttl_ms = least(coalesce((t.metadata ->> 'heartbeatTimeoutSeconds')::bigint * 1000, $5),
                                        \(TaskSpec.maxLeaseTTLMillis)),
                   -- start_to_close: this attempt must finish within the task's timeout (0003).
                   deadline_at = $1 + (t.metadata ->> 'timeoutSeconds')::bigint * interval '1 second',
                   started_at = coalesce(t.started_at, $1), updated_at = $1
              FROM assigned a
             WHERE t.id = a.id
         RETURNING t.*, a.request AS claim_request, a.actor AS claim_actor, a.trace AS claim_trace
        ), attempts AS (
            INSERT INTO task_attempts (task_id, attempt, executor_id, fencing_token, leased_at)
            SELECT id, attempt, lease_owner, fencing_token, $1 FROM leased
        )
        SELECT \(TaskRow.columns), t.claim_request, t.claim_actor, t.claim_trace, up.keys AS upstream_keys,
               up.results AS upstream_results,
               CASE WHEN row_number() OVER (PARTITION BY t.workflow_id) = 1 THEN q.inputs END AS inputs
          FROM leased t JOIN workflows w ON w.id = t.workflow_id
          LEFT JOIN queries q ON q.workflow_id = t.workflow_id
         CROSS JOIN LATERAL (
               SELECT array_agg(u.key) AS keys, array_agg(coalesce(u.result, '\\x'::bytea)) AS results
                 FROM edges e
                CROSS JOIN LATERAL (SELECT key, result FROM tasks WHERE id = e.upstream_task_id OFFSET 0) u
                WHERE e.downstream_task_id = t.id) up
         ORDER BY t.dispatch_priority DESC, t.rank DESC, t.ready_at, t.id
        """

    /// Completes a batch of tasks whose leases are still held, with every consequence but the
    /// workflow's end, in one statement (`PostgresDispatchStore+CompletionBatch`):
    ///
    /// - `done`: the fencing check (token and owner, hence state) is the UPDATE's own condition;
    ///   rows that do not match are not returned, and the caller reads them to answer stale or
    ///   unknown. Each task id appears at most once per call;
    /// - `attempts`: their attempts close;
    /// - `children`: the finished tasks' children are decremented (a child with several finished
    ///   parents by their number), locked in id order first (`locked`) so two batches releasing a
    ///   shared child queue on it instead of deadlocking; those reaching zero become ready;
    /// - the rows returned are the events to append (`appendTaskEvents`, last in the transaction):
    ///   every task_succeeded in the batch's order, then every readied child's task_ready;
    /// - `workflows_locked`: the workflows of the finished tasks, locked in id order: the lock that
    ///   serialises "is this workflow done?" (`workflowsWithoutUnfinished`, the next statement).
    ///   The batch has taken them already (`lockWorkflowsOfTasks`, the statement before); this
    ///   keeps the statement correct on its own.
    ///
    /// A readied child's event carries the audit cause of one of the completions that released it
    /// (the least, as text). Indexes: tasks_pkey, task_attempts_pkey, edges primary key
    /// (upstream_task_id, …), workflows_pkey: work proportional to the batch and its fan-out.
    /// $1 task ids, $2 tokens, $3 executors, $4 results, $5 report times, $6 and $7 each report's
    /// audit cause (actor jsonb text, request trace id; NULL for none), $8 now (children's ready
    /// time), $9 aging bucket of now.
    static let completeHeld = """
        WITH request AS (
            SELECT * FROM unnest($1::uuid[], $2::int8[], $3::text[], $4::bytea[], $5::timestamptz[], $6::text[], $7::text[])
                   WITH ORDINALITY AS r(id, token, executor, result, at, actor, trace, n)
        ), done AS (
            UPDATE tasks t
               SET state = 'succeeded', result = r.result, lease_owner = NULL, lease_expires_at = NULL,
                   finished_at = r.at, updated_at = r.at
              FROM request r
             -- "Still held" without naming the state: the CHECK tasks_lease_consistent makes an owner
             -- imply state leased or running, and leaving the state out keeps the planner off the
             -- partial lease indexes, whose statistics lag behind a busy queue (it once chose a
             -- nested loop over tasks_lease_owner_idx, dropped since, that rescanned the request 320 times).
             WHERE t.id = r.id AND t.fencing_token = r.token AND t.lease_owner = r.executor
         RETURNING t.id, t.key, t.workflow_id, t.attempt, r.executor, r.at, r.actor, r.trace, r.n
        ), attempts AS (
            UPDATE task_attempts a SET outcome = 'succeeded', finished_at = done.at
              FROM done WHERE a.task_id = done.id AND a.attempt = done.attempt
        ), finished AS (
            -- The join alone names the edges: an extra `e.upstream_task_id = ANY($1)` made every
            -- probe of the nested loop sort the whole array again (PostgreSQL 15 prepares array
            -- keys at each rescan), a sixth of the server's PostgreSQL CPU at 64 executors.
            SELECT e.downstream_task_id AS id, count(*)::int4 AS n, min(d.actor) AS actor, min(d.trace) AS trace
              FROM done d JOIN edges e ON e.upstream_task_id = d.id
             GROUP BY e.downstream_task_id
        ), locked AS (
            SELECT c.id FROM tasks c WHERE c.id IN (SELECT id FROM finished) ORDER BY c.id FOR NO KEY UPDATE
        ), children AS (
            UPDATE tasks c
               SET unfinished_upstream = c.unfinished_upstream - f.n,
                   state = CASE WHEN c.unfinished_upstream = f.n AND c.state = 'pending' THEN 'ready' ELSE c.state END,
                   ready_at = CASE WHEN c.unfinished_upstream = f.n AND c.state = 'pending' THEN $8 ELSE c.ready_at END,
                   dispatch_priority = CASE WHEN c.unfinished_upstream = f.n AND c.state = 'pending'
                                            THEN c.priority - $9 ELSE c.dispatch_priority END,
                   updated_at = $8
              FROM finished f JOIN locked l ON l.id = f.id
             WHERE c.id = f.id
         RETURNING c.id, c.key, c.state, c.unfinished_upstream, c.workflow_id, f.actor, f.trace
        ), workflows_locked AS (
            SELECT id FROM workflows
             WHERE id IN (SELECT workflow_id FROM done) AND (SELECT count(*) FROM children) >= 0
             ORDER BY id
               FOR NO KEY UPDATE
        )
        SELECT 1 AS phase, d.n AS ord, d.id, d.key, d.workflow_id, d.attempt, d.executor, d.at, d.actor, d.trace,
               (SELECT count(*) FROM workflows_locked) AS locked
          FROM done d
        UNION ALL
        SELECT 2, 0, c.id, c.key, c.workflow_id, NULL::int4, NULL::text, NULL::timestamptz, c.actor, c.trace, 0
          FROM children c WHERE c.state = 'ready' AND c.unfinished_upstream = 0
         ORDER BY 1, 2, 5, 4
        """

    /// Locks the workflows of these tasks, in id order: the first statement of every transaction
    /// that completes or fails tasks (before `completeHeld`, in the same round trip), as UpdateDag
    /// takes it first too. `completeHeld` finds a finished task's children through the edges its
    /// snapshot shows; taken only at its end, the lock let a DAG update commit edges in between,
    /// which the completion then never saw: a task added below the finished one stayed pending
    /// forever, or a removed edge was decremented twice (a check violation, the report lost).
    /// A statement after this one sees every graph change committed before it. Indexes:
    /// tasks_pkey (an initplan, as in `workflowsOfTasksWithoutUnfinished`), workflows_pkey.
    /// $1 task ids.
    static let lockWorkflowsOfTasks = """
        SELECT id FROM workflows
         WHERE id = ANY (ARRAY(SELECT workflow_id FROM tasks WHERE id = ANY($1::uuid[])))
         ORDER BY id
           FOR NO KEY UPDATE
        """

    /// When a failure report ($1 task, $2 its token, $3 retryable) ends its task's last attempt in
    /// a fail_fast workflow: the workflow's unfinished tasks, locked in id order, before the
    /// report appends anything (`StoreTransaction.lockForFailurePolicy`). Otherwise no rows. Sent
    /// after `lockWorkflowsOfTasks`, so it reads the task as the workflow lock left it.
    /// Indexes: tasks_pkey, workflows_pkey, then tasks_workflow_unfinished_idx.
    static let lockUnfinishedBeforeLastFailure = """
        SELECT t.id FROM tasks t
         WHERE t.workflow_id = (SELECT f.workflow_id FROM tasks f JOIN workflows w ON w.id = f.workflow_id
                                 WHERE f.id = $1 AND f.fencing_token = $2 AND w.failure_policy = 'fail_fast'
                                   AND (NOT $3::bool OR f.attempt >= f.max_attempts))
           AND t.state IN \(TaskStateColumn.unfinishedSQL)
         ORDER BY t.id
           FOR NO KEY UPDATE OF t
        """

    /// Appends task events built from a batch's rows, in the given order, and queues the events
    /// NOTIFY (payload: the last sequence) and, with $12, the tasks-ready one — in one statement,
    /// the last before COMMIT: appending events holds the event-order lock (migration 0006) until
    /// commit, so the batch appends them last.
    /// $1 workflow ids, $2 types, $3 times, $4 task ids, $5 keys, $6 task states, $7 attempts,
    /// $8 executors, $9 actors (jsonb text), $10 request trace ids, $11 events channel,
    /// $12 tasks became ready, $13 tasks-ready channel.
    static let appendTaskEvents = """
        WITH appended AS (
            INSERT INTO workflow_events (workflow_id, type, at, task_id, task_key, task_state, attempt, executor_id, trace_id,
                                         actor, request_trace_id)
            SELECT e.w, e.ty, e.a, e.id, e.k, e.st, e.att, e.ex, w.trace_id, e.ac::jsonb, e.rt
              FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::uuid[], $5::text[], $6::text[], $7::int4[], $8::text[],
                          $9::text[], $10::text[]) WITH ORDINALITY AS e(w, ty, a, id, k, st, att, ex, ac, rt, n)
              JOIN workflows w ON w.id = e.w
             ORDER BY e.n
            RETURNING seq
        )
        SELECT pg_notify($11, (SELECT max(seq) FROM appended)::text) AS events,
               CASE WHEN $12::bool THEN pg_notify($13, '') END AS ready
        """

    /// Current state of tasks a batch could not complete (stale or unknown). Index: tasks_pkey.
    static let taskStates = """
        SELECT t.id, t.state, t.fencing_token, w.tenant, a.executor_id AS attempt_executor, a.outcome AS attempt_outcome,
               CASE WHEN t.state = 'succeeded' THEN t.result END AS result
          FROM tasks t JOIN workflows w ON w.id = t.workflow_id
          LEFT JOIN task_attempts a ON a.task_id = t.id AND a.fencing_token = t.fencing_token
         WHERE t.id = ANY($1::uuid[])
        """

    /// Which workflows of these tasks have no unfinished task left. Sent right behind
    /// `completeHeld` in the same round trip, it is a new statement after the locks that one took,
    /// so its snapshot includes every commit that held them before; named by task ids because the
    /// workflows are not known before `completeHeld` answers (the caller keeps only the workflows
    /// whose tasks it completed, the ones it holds locked). Indexes: tasks_pkey (an initplan: the
    /// workflow ids become an array, so a prepared statement's generic plan still looks the
    /// workflows up by workflows_pkey, as with `= ANY($1)`, instead of a semi-join that scans
    /// them), then tasks_workflow_unfinished_idx (one probe per workflow). $1 task ids.
    static let workflowsOfTasksWithoutUnfinished = """
        SELECT w.id, w.state, w.trace_id, w.failure_policy
          FROM workflows w
         WHERE w.id = ANY (ARRAY(SELECT workflow_id FROM tasks WHERE id = ANY($1::uuid[])))
           AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.workflow_id = w.id AND t.state IN \(TaskStateColumn.unfinishedSQL))
        """

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

    /// Leases an executor gives back, when still held with those tokens ($1 ids, $2 tokens, $3
    /// executor) and, when $4 is not NULL, expired by then. Index: tasks primary key.
    static let heldLeases = """
        SELECT t.id, t.workflow_id, t.key, t.attempt, t.max_attempts, t.fencing_token, t.lease_owner, t.metadata, w.trace_id
          FROM tasks t JOIN workflows w ON w.id = t.workflow_id
         WHERE t.id IN (SELECT r.id FROM unnest($1::uuid[], $2::int8[]) AS r(id, token)
                          JOIN tasks x ON x.id = r.id AND x.fencing_token = r.token)
           AND t.lease_owner = $3 AND t.state IN ('leased', 'running')
           AND ($4::timestamptz IS NULL OR t.lease_expires_at <= $4)
         ORDER BY t.id
           FOR NO KEY UPDATE OF t
        """

    /// Of the attempts ($1 task ids, $2 attempts) a stream ($3 its session id) is about to give
    /// back, those another stream resumed since (migration 0012): that stream holds them now.
    /// Index: task_attempts primary key.
    static let resumedElsewhere = """
        SELECT a.task_id
          FROM unnest($1::uuid[], $2::int4[]) AS r(id, attempt)
          JOIN task_attempts a ON a.task_id = r.id AND a.attempt = r.attempt
         WHERE a.resumed_by <> $3
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

extension DispatchSQL {
    /// Undoes the claims of leases whose assignments never left the server (`returnUnsentLeases`):
    /// the task is ready again where it was in the queue (`ready_at` and `dispatch_priority` kept),
    /// its attempt count and first start are as before the claim, and the claim's attempt row is
    /// deleted. The next claim takes the same attempt number and fencing token; nobody saw them.
    /// Held by `$3` with these tokens and not yet reported on (state leased), or nothing happens.
    /// $1 ids, $2 tokens, $3 executor, $4 now.
    static let returnUnsent = """
        WITH returned AS (
            UPDATE tasks t
               SET state = 'ready', attempt = t.attempt - 1, lease_owner = NULL, lease_expires_at = NULL, deadline_at = NULL,
                   started_at = CASE WHEN t.attempt = 1 THEN NULL ELSE t.started_at END, updated_at = $4
              FROM unnest($1::uuid[], $2::int8[]) AS r(id, token)
             WHERE t.id = r.id AND t.fencing_token = r.token AND t.lease_owner = $3 AND t.state = 'leased'
         RETURNING t.id, t.key, t.workflow_id, t.attempt
        ), attempts AS (
            DELETE FROM task_attempts a USING returned r WHERE a.task_id = r.id AND a.attempt = r.attempt + 1
        )
        SELECT r.id::text AS id, r.key, r.workflow_id::text AS workflow_id, r.attempt, w.trace_id
          FROM returned r JOIN workflows w ON w.id = r.workflow_id
         ORDER BY r.id
        """
}
