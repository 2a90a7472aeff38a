import Foundation
import OrchestratorApp
import OrchestratorDomain
import PostgresClient

extension PostgresWorkflowStore {
    public func updateDag(_ update: DagUpdate) async throws -> StoredDagVersion {
        let newVersion = try await context.transaction { transaction -> Int in
            // The workflow lock serialises writers: the version check and the write are atomic.
            let locked = try await transaction.query(
                """
                SELECT current_dag_version, state, trace_id, priority FROM workflows
                 WHERE id = $1 AND ($2::text IS NULL OR tenant = $2) FOR NO KEY UPDATE
                """, [update.workflowID, update.tenant])
            guard let workflowRow = locked.first else { throw StoreError.notFound("workflow \(update.workflowID)") }
            let current = try workflowRow.decode(Int.self, column: "current_dag_version")
            let state = WorkflowState(rawValue: try workflowRow.decode(String.self, column: "state")) ?? .running
            if state.isTerminal { throw StoreError.workflowFinished(update.workflowID, state) }
            guard current == update.expectedVersion else {
                throw StoreError.versionConflict(expected: update.expectedVersion, current: current)
            }
            let traceID = try workflowRow.decode(String.self, column: "trace_id")
            let priority = try workflowRow.decode(Int.self, column: "priority")
            let version = current + 1

            var existing = try await currentTasks(update.workflowID, transaction: transaction)
            let oldUpstream = try await currentUpstream(update.workflowID, transaction: transaction)
            let newKeys = Set(update.newDag.tasks.map(\.key))
            let graph = try GraphRows(
                dag: update.newDag, payloads: update.payloads, ranks: update.ranks,
                existingIDs: existing.filter { newKeys.contains($0.key) }.mapValues(\.id))
            // Only what the update changes is written: the edges added and removed, the tasks whose
            // upstream tasks changed, the kept tasks whose spec or rank changed. It rewrote every
            // edge and task of the workflow, so a workflow grown one task at a time cost time
            // quadratic in its size (1,000 tasks: 140-240 ms per update, mostly PostgreSQL).
            let edges = EdgeChanges(old: oldUpstream, existing: existing.mapValues(\.id), new: graph)
            let rewired = Set(edges.downstreamTouched).subtracting(graph.newIDs)
            try await lockUnstarted(
                &existing, among: Set(existing.filter { !newKeys.contains($0.key) }.map(\.value.id)).union(rewired), transaction: transaction)

            // Removed tasks must not have started. A task that started or finished keeps its upstream
            // tasks: it ran on their results (or was skipped or cancelled for them), and a removed
            // edge made the graph deny what it consumed and left a skipped task waiting on nothing
            // (found by black-box testing). Only upstream tasks the update removes may leave it: a
            // task that has not started can be upstream only of a skipped or cancelled one.
            var started: [String] = []
            let removedKeys = Set(existing.keys.filter { !newKeys.contains($0) })
            for (key, task) in existing where !newKeys.contains(key) && !task.notStarted { started.append(key.rawValue) }
            for (key, task) in existing where newKeys.contains(key) && !task.notStarted {
                if (graph.upstreamKeys[key] ?? []) != (oldUpstream[key] ?? []).subtracting(removedKeys) { started.append(key.rawValue) }
            }
            if !started.isEmpty { throw StoreError.tasksAlreadyStarted(started.sorted()) }

            let removed = existing.filter { !newKeys.contains($0.key) }.map(\.value.id)
            if !removed.isEmpty {
                // Their attempts too (a removed task may have failed attempts behind it, in
                // retry_wait): no foreign key cascades since migration 0010.
                try await transaction.query(
                    """
                    WITH gone AS (DELETE FROM tasks WHERE id = ANY($1::uuid[]) RETURNING id)
                    DELETE FROM task_attempts WHERE task_id IN (SELECT id FROM gone)
                    """, [removed])
            }
            if !edges.removedUpstream.isEmpty {
                // edges_pkey (upstream_task_id, downstream_task_id).
                try await transaction.query(
                    """
                    DELETE FROM edges e USING unnest($1::uuid[], $2::uuid[]) AS r(u, d)
                     WHERE e.upstream_task_id = r.u AND e.downstream_task_id = r.d
                    """, [edges.removedUpstream, edges.removedDownstream])
            }
            try await updateKeptTasks(update, existing: existing, graph: graph, priority: priority, transaction: transaction)
            var added = graph
            added.edgeUpstream = edges.addedUpstream
            added.edgeDownstream = edges.addedDownstream
            insertGraph(
                added, workflowID: update.workflowID, version: version, reason: update.reason, author: update.actor.subject,
                workflowPriority: priority, now: update.now, readyWithoutUpstream: false, transaction: transaction)
            try await transaction.query(
                "UPDATE workflows SET current_dag_version = $2, updated_at = $3 WHERE id = $1",
                [update.workflowID, version, update.now.sqlTimestamp])
            // Events from here on: appending takes the event-order lock until commit (migration
            // 0006), which every claim and completion batch needs too, so not before the graph.
            var events = [
                EventDraft(
                    workflowID: update.workflowID, kind: .dagUpdated, at: update.now, dagVersion: version, message: update.reason,
                    traceID: traceID, actor: update.actor)
            ]
            // Each task removed or added, named: the stream alone said neither, and a client
            // rebuilding task states from it kept a removed task READY for ever (found by
            // black-box testing). Added tasks that can run at once follow as task_ready.
            for (key, task) in existing.sorted(by: { $0.key.rawValue < $1.key.rawValue }) where !newKeys.contains(key) {
                events.append(EventDraft(
                    workflowID: update.workflowID, kind: .dagUpdated, at: update.now, taskID: task.id.uuidString.lowercased(),
                    taskKey: key.rawValue, dagVersion: version, message: "removed by the update", traceID: traceID, actor: update.actor))
            }
            for (position, ordinal) in graph.ordinals.enumerated() {
                events.append(EventDraft(
                    workflowID: update.workflowID, kind: .dagUpdated, at: update.now, taskID: graph.newIDs[position].uuidString.lowercased(),
                    taskKey: update.newDag.tasks[Int(ordinal) - 1].key.rawValue, taskState: "pending", dagVersion: version,
                    message: "added by the update", traceID: traceID, actor: update.actor))
            }
            if update.completesPlanning && state == .planning {
                try await transaction.query(
                    "UPDATE workflows SET state = 'running', updated_at = $2 WHERE id = $1", [update.workflowID, update.now.sqlTimestamp])
                events.append(
                    EventDraft(
                        workflowID: update.workflowID, kind: .workflowPlanned, at: update.now, workflowState: .running,
                        dagVersion: version, message: update.reason, traceID: traceID, actor: update.actor))
            }
            try transaction.append(events)
            try await recomputeCounters(
                update.workflowID, tasks: Array(rewired.union(graph.newIDs)), version: version, traceID: traceID, now: update.now,
                transaction: transaction)
            _ = try await transaction.finishWorkflowIfDone(update.workflowID, now: update.now)
            return version
        }
        // What was stored, without reading back and decoding the graph just written (half the
        // server's time per update of a 1,000-task workflow went to decoding its JSON twice).
        return StoredDagVersion(
            workflowID: update.workflowID, version: newVersion, dag: update.newDag, reason: update.reason, author: update.actor.subject,
            createdAt: update.now)
    }

    private struct ExistingTask {
        var id: UUID
        var state: String
        var notStarted: Bool { state == "pending" || state == "ready" || state == "retry_wait" }
    }

    private func currentTasks(_ workflowID: String, transaction: StoreTransaction) async throws -> [TaskKey: ExistingTask] {
        // tasks_workflow_key_key.
        let rows = try await transaction.query("SELECT id, key, state FROM tasks WHERE workflow_id = $1", [workflowID])
        var tasks: [TaskKey: ExistingTask] = [:]
        for row in rows {
            tasks[TaskKey(try row.decode(String.self, column: "key"))] = ExistingTask(
                id: try row.decode(UUID.self, column: "id"), state: try row.decode(String.self, column: "state"))
        }
        return tasks
    }

    /// Claims lease ready tasks without the workflow lock. The tasks the update removes or
    /// re-wires that have not started are locked (in id order, as every batch locks tasks) and
    /// their state read again: one leased a moment ago then counts as started, instead of being
    /// removed or re-wired under its executor; and no claim takes one of them until this update
    /// commits (claims skip locked rows).
    private func lockUnstarted(_ tasks: inout [TaskKey: ExistingTask], among ids: Set<UUID>, transaction: StoreTransaction) async throws {
        let unstarted = tasks.values.filter { $0.notStarted && ids.contains($0.id) }.map(\.id)
        guard !unstarted.isEmpty else { return }
        let rows = try await transaction.query(
            "SELECT id, state FROM tasks WHERE id = ANY($1::uuid[]) ORDER BY id FOR NO KEY UPDATE", [unstarted])
        var fresh: [UUID: String] = [:]
        for row in rows { fresh[try row.decode(UUID.self, column: "id")] = try row.decode(String.self, column: "state") }
        for (key, task) in tasks where task.notStarted {
            // A row gone since the read (not possible while the workflow is locked) keeps its state.
            if let state = fresh[task.id] { tasks[key]?.state = state }
        }
    }

    /// From the workflow's tasks (tasks_workflow_key_key) to their edges (edges_downstream_idx):
    /// `edges.workflow_id` has no index, and filtering on it read every edge of every workflow
    /// under the workflow lock (50 ms for 400,000 edges).
    private func currentUpstream(_ workflowID: String, transaction: StoreTransaction) async throws -> [TaskKey: Set<TaskKey>] {
        let rows = try await transaction.query(
            """
            SELECT u.key AS upstream, d.key AS downstream
              FROM tasks d JOIN edges e ON e.downstream_task_id = d.id JOIN tasks u ON u.id = e.upstream_task_id
             WHERE d.workflow_id = $1
            """, [workflowID])
        var upstream: [TaskKey: Set<TaskKey>] = [:]
        for row in rows {
            upstream[TaskKey(try row.decode(String.self, column: "downstream")), default: []]
                .insert(TaskKey(try row.decode(String.self, column: "upstream")))
        }
        return upstream
    }

    /// Kept tasks not started take the new graph's rank and spec (and payload, when one is given);
    /// only rows where one of them differs are written. A started task keeps the rank it was
    /// dispatched with: ranks only order dispatch, and growing a chain changes every ancestor's.
    private func updateKeptTasks(
        _ update: DagUpdate, existing: [TaskKey: ExistingTask], graph: GraphRows, priority: Int, transaction: StoreTransaction
    ) async throws {
        var ordinals: [Int64] = []
        var ids: [UUID] = []
        var payloads: [[UInt8]?] = []
        var ranks: [Double] = []
        for (index, task) in update.newDag.tasks.enumerated() {
            guard let old = existing[task.key] else { continue }
            ordinals.append(Int64(index + 1))
            ids.append(old.id)
            payloads.append(update.payloads[task.key])
            ranks.append(update.ranks[task.key] ?? 0)
        }
        guard !ids.isEmpty else { return }
        try await transaction.query(
            """
            WITH spec AS (
                SELECT s.value AS m, s.ordinality AS n
                  FROM jsonb_array_elements(convert_from($1, 'UTF8')::jsonb -> 'tasks') WITH ORDINALITY AS s
            ), source AS (
                SELECT spec.m, a.id, a.input, a.rank FROM unnest($2::int8[], $3::uuid[], $4::bytea[], $5::float8[]) AS a(n, id, input, rank)
                  JOIN spec ON spec.n = a.n
            )
            UPDATE tasks t
               SET rank = s.rank, updated_at = $7,
                   metadata = CASE WHEN t.state IN ('pending', 'ready', 'retry_wait') THEN s.m ELSE t.metadata END,
                   input = CASE WHEN t.state IN ('pending', 'ready', 'retry_wait') THEN coalesce(s.input, t.input) ELSE t.input END,
                   required_capabilities = CASE WHEN t.state IN ('pending', 'ready', 'retry_wait')
                       THEN ARRAY(SELECT jsonb_array_elements_text(s.m -> 'requiredCapabilities')) ELSE t.required_capabilities END,
                   max_attempts = CASE WHEN t.state IN ('pending', 'ready', 'retry_wait')
                       THEN greatest(1, coalesce((s.m -> 'retry' ->> 'maxAttempts')::int, 1)) ELSE t.max_attempts END,
                   priority = CASE WHEN t.state IN ('pending', 'ready', 'retry_wait')
                       THEN CASE WHEN (s.m ->> 'priority')::int <> 0 THEN (s.m ->> 'priority')::int ELSE $6::int END
                       ELSE t.priority END
              FROM source s
             WHERE t.id = s.id AND t.state IN ('pending', 'ready', 'retry_wait')
               AND (t.rank IS DISTINCT FROM s.rank OR t.metadata IS DISTINCT FROM s.m
                    OR (s.input IS NOT NULL AND t.input IS DISTINCT FROM s.input)
                    OR t.priority IS DISTINCT FROM (CASE WHEN (s.m ->> 'priority')::int <> 0 THEN (s.m ->> 'priority')::int ELSE $6::int END))
            """,
            [graph.json, ordinals, ids, payloads, ranks, priority, update.now.sqlTimestamp])
    }

    /// Recounts unfinished upstream tasks of the tasks given (added, or whose upstream tasks
    /// changed) that have not started; the others' counters are the completions' to keep:
    /// a pending task reaching zero becomes ready, a ready one that gained an unfinished upstream
    /// goes back to pending, and one below a failed, cancelled or skipped task is skipped. Each
    /// change is an event: `task_ready`, `task_skipped`, and for a task back to pending (there is
    /// no pending event type; one older servers cannot read would break their watches in a
    /// rolling upgrade) a `dag_updated` naming the task with state pending — without it watchers
    /// went on showing the task ready (found by black-box testing).
    private func recomputeCounters(
        _ workflowID: String, tasks: [UUID], version: Int, traceID: String, now: UnixMillis, transaction: StoreTransaction
    ) async throws {
        guard !tasks.isEmpty else { return }
        let rows = try await transaction.query(
            """
            WITH counts AS (
                SELECT d.id, d.state AS old_state,
                       count(u.id) FILTER (WHERE u.state <> 'succeeded') AS unfinished,
                       coalesce(bool_or(u.state IN ('failed', 'cancelled', 'skipped')), false) AS doomed
                  FROM tasks d
                  LEFT JOIN edges e ON e.downstream_task_id = d.id
                  LEFT JOIN tasks u ON u.id = e.upstream_task_id
                 WHERE d.id = ANY($8::uuid[]) AND d.workflow_id = $1
                 GROUP BY d.id, d.state
            ), next AS (
                -- A finished task (one whose removed upstream task had not started) keeps its
                -- state; only its count changes.
                SELECT id, old_state, unfinished,
                       CASE WHEN old_state NOT IN ('pending', 'ready', 'retry_wait') THEN old_state
                            WHEN doomed THEN 'skipped'
                            WHEN unfinished > 0 THEN 'pending'
                            WHEN old_state = 'pending' THEN 'ready'
                            ELSE old_state END AS state
                  FROM counts
            ), updated AS (
                UPDATE tasks t
                   SET unfinished_upstream = n.unfinished, state = n.state,
                       ready_at = CASE WHEN n.state = 'ready' AND n.old_state <> 'ready' THEN $2 ELSE t.ready_at END,
                       dispatch_priority = CASE WHEN n.state = 'ready' AND n.old_state <> 'ready'
                                                THEN t.priority - $3 ELSE t.dispatch_priority END,
                       next_attempt_at = CASE WHEN n.state = 'retry_wait' OR n.old_state NOT IN ('pending', 'ready', 'retry_wait')
                                             THEN t.next_attempt_at END,
                       finished_at = CASE WHEN n.state = 'skipped' AND n.old_state <> 'skipped' THEN $2 ELSE t.finished_at END,
                       updated_at = $2
                  FROM next n
                 WHERE t.id = n.id AND (t.unfinished_upstream <> n.unfinished OR n.state <> n.old_state)
             RETURNING t.id, t.key, t.attempt, n.state, n.old_state
            ), events AS (
                INSERT INTO workflow_events (workflow_id, type, at, task_id, task_key, task_state, attempt, trace_id, actor,
                                             request_trace_id, dag_version, message)
                SELECT $1, CASE state WHEN 'ready' THEN 'task_ready' WHEN 'skipped' THEN 'task_skipped' ELSE 'dag_updated' END,
                       $2, id, key, state, attempt, $4, $5::jsonb, $6,
                       CASE WHEN state = 'pending' THEN $7::int END,
                       CASE WHEN state = 'pending' THEN 'waits again: the update gave it an unfinished upstream task' ELSE '' END
                  FROM updated WHERE state <> old_state AND state IN ('ready', 'skipped', 'pending')
                RETURNING task_state
            )
            SELECT count(*) FILTER (WHERE task_state = 'ready') AS readied, count(*) AS appended FROM events
            """,
            [workflowID, now.sqlTimestamp, transaction.configuration.agingBucket(now), traceID, transaction.causeActor,
             transaction.causeTraceID, version, tasks])
        if let row = rows.first {
            if try row.decode(Int.self, column: "readied") > 0 { transaction.readiedTasks = true }
            if try row.decode(Int.self, column: "appended") > 0 { transaction.appendedEvents = true }
        }
    }
}

/// The edges an update adds and removes, as task ids, from the old graph's upstream keys and the
/// new graph's rows (edges of removed tasks are among the removed).
struct EdgeChanges {
    var addedUpstream: [UUID] = []
    var addedDownstream: [UUID] = []
    var removedUpstream: [UUID] = []
    var removedDownstream: [UUID] = []
    /// Tasks that gained or lost an upstream task.
    var downstreamTouched: [UUID] = []

    init(old: [TaskKey: Set<TaskKey>], existing: [TaskKey: UUID], new graph: GraphRows) {
        struct Pair: Hashable { var upstream: UUID; var downstream: UUID }
        var before = Set<Pair>()
        for (downstream, upstreams) in old {
            guard let to = existing[downstream] else { continue }
            for upstream in upstreams { if let from = existing[upstream] { before.insert(Pair(upstream: from, downstream: to)) } }
        }
        var after = Set<Pair>()
        for (from, to) in zip(graph.edgeUpstream, graph.edgeDownstream) { after.insert(Pair(upstream: from, downstream: to)) }
        var touched = Set<UUID>()
        for pair in after.subtracting(before) {
            addedUpstream.append(pair.upstream)
            addedDownstream.append(pair.downstream)
            touched.insert(pair.downstream)
        }
        for pair in before.subtracting(after) {
            removedUpstream.append(pair.upstream)
            removedDownstream.append(pair.downstream)
            touched.insert(pair.downstream)
        }
        downstreamTouched = Array(touched)
    }
}
