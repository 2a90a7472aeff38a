import Foundation
import OrchestratorApp
import OrchestratorDomain
import PostgresClient

extension PostgresWorkflowStore {
    public func createWorkflow(_ workflow: NewWorkflow) async throws -> CreatedWorkflow {
        // The workflow a request id named can be deleted (retention) between the insert that met
        // it and the read of it: the key is free then, and the insert runs again. A retry racing a
        // deletion answered NOT_FOUND for the id of a workflow never stored.
        for _ in 0..<3 {
            if let result = try await createWorkflowOnce(workflow) { return result }
        }
        throw StoreError.unavailable("the workflow holding request id \(workflow.requestID ?? "") was deleted three times while this one was stored")
    }

    /// The stored or existing workflow; nil when the request id met a workflow that was gone by
    /// the time it was read.
    private func createWorkflowOnce(_ workflow: NewWorkflow) async throws -> CreatedWorkflow? {
        if let requestID = workflow.requestID, let existing = try await existingWorkflow(tenant: workflow.tenant, requestID: requestID) {
            return CreatedWorkflow(workflow: existing, created: false)
        }
        let graph = try GraphRows(dag: workflow.dag, payloads: workflow.payloads, ranks: workflow.ranks)
        // A delegated plan's workflow is PLANNING until its planning task's graph is adopted.
        let initialState: WorkflowState = workflow.awaitingPlan ? .planning : .running
        let leases = DirectLeaseColumns(graph: graph, dag: workflow.dag, leases: workflow.directLeases)
        let created = try await context.transaction { transaction -> Bool in
            // ON CONFLICT on (tenant, request_id): of two concurrent submissions with one request id,
            // the second waits for the first to commit and then inserts nothing.
            let insertWorkflow = """
                INSERT INTO workflows (id, tenant, request_id, state, priority, current_dag_version, failure_policy, trace_id,
                                       trace_state, trace_sampled, labels, submitted_by, planner, planning, created_at, updated_at)
                VALUES ($1, $2, $3, $12, $4, 1, $5, $6, $13, $14, $7, $8, $9, $10, $11, $11)
                ON CONFLICT ON CONSTRAINT workflows_tenant_request_id_key DO NOTHING
                RETURNING id
                """
            let columns: [any PostgresEncodable] = [
                workflow.workflowID, workflow.tenant, workflow.requestID, workflow.priority, workflow.failurePolicy.rawValue,
                workflow.traceID, try JSONColumn.object(workflow.labels), workflow.actor.subject, workflow.planning.planner,
                try JSONColumn.encode(PlanningJSON(workflow.planning)), workflow.now.sqlTimestamp, initialState.rawValue,
                workflow.traceState, workflow.traceSampled,
            ]
            if workflow.requestID == nil {
                // Nothing to conflict with (a NULL request id is never equal): the whole workflow
                // goes in one round trip, with COMMIT.
                transaction.queue(insertWorkflow, columns)
            } else {
                guard !(try await transaction.query(insertWorkflow, columns)).isEmpty else { return false }
            }
            try insertQuery(workflow, transaction: transaction)
            insertGraph(
                graph, workflowID: workflow.workflowID, version: 1, reason: "submitted", author: workflow.actor.subject,
                workflowPriority: workflow.priority, now: workflow.now, leases: leases, transaction: transaction)
            // Events last: appending takes the event-order lock until commit (migration 0006), and
            // every claim and completion batch of the server appends too; taken before the graph,
            // it made them all wait while a big DAG was written.
            try transaction.append([
                EventDraft(
                    workflowID: workflow.workflowID, kind: .workflowSubmitted, at: workflow.now, workflowState: initialState,
                    traceID: workflow.traceID, actor: workflow.actor),
                EventDraft(
                    workflowID: workflow.workflowID, kind: .workflowPlanned, at: workflow.now, workflowState: initialState, dagVersion: 1,
                    message: workflow.planning.rationale, traceID: workflow.traceID, actor: workflow.actor),
            ])
            appendRootsReady(
                graph, dag: workflow.dag, workflowID: workflow.workflowID, traceID: workflow.traceID, now: workflow.now,
                transaction: transaction)
            if let leases {
                try appendDirectLeases(leases, graph: graph, dag: workflow.dag, workflow: workflow, transaction: transaction)
            }
            // A workflow with no tasks is done as soon as it exists.
            if workflow.dag.tasks.isEmpty {
                _ = try await transaction.finishWorkflowIfDone(workflow.workflowID, now: workflow.now)
            }
            return true
        }
        if !created {
            guard let requestID = workflow.requestID, let existing = try await existingWorkflow(tenant: workflow.tenant, requestID: requestID)
            else { return nil }
            return CreatedWorkflow(workflow: existing, created: false)
        }
        // The new workflow's row is what this transaction wrote: no read back (a round trip and a
        // JSON decode of the whole query, DAG included, before the caller could wake the
        // dispatcher). Only an empty DAG changed state inside the transaction; that one is read.
        if created && !workflow.dag.tasks.isEmpty {
            return CreatedWorkflow(
                workflow: Self.record(of: workflow, graph: graph, leased: leases?.positions.count ?? 0, state: initialState),
                created: true, leased: leases.map { Self.claimedTasks($0, graph: graph, workflow: workflow) } ?? [])
        }
        guard let record = try await self.workflow(id: workflow.workflowID, tenant: nil) else {
            throw StoreError.notFound("workflow \(workflow.workflowID)")
        }
        return CreatedWorkflow(workflow: record, created: created)
    }

    /// The row `createWorkflow` inserted, as `workflow(id:)` would read it at commit.
    static func record(of workflow: NewWorkflow, graph: GraphRows, leased: Int, state: WorkflowState) -> WorkflowRecord {
        let roots = graph.newUnfinished.reduce(0) { $0 + ($1 == 0 ? 1 : 0) }
        var counts = TaskCounts()
        if roots > leased { counts.byState[.ready] = roots - leased }
        if leased > 0 { counts.byState[.leased] = leased }
        if graph.newUnfinished.count > roots { counts.byState[.pending] = graph.newUnfinished.count - roots }
        return WorkflowRecord(
            workflowID: workflow.workflowID, tenant: workflow.tenant, requestID: workflow.requestID, state: state,
            query: workflow.query, currentDagVersion: 1, failurePolicy: workflow.failurePolicy, traceID: workflow.traceID,
            labels: workflow.labels, priority: workflow.priority, planning: PlanningJSON(workflow.planning).record,
            counts: counts, error: nil, submittedBy: workflow.actor.subject, createdAt: workflow.now,
            updatedAt: workflow.now, finishedAt: nil)
    }

    private func existingWorkflow(tenant: String, requestID: String) async throws -> WorkflowRecord? {
        // workflows_tenant_request_id_key.
        let id = try await context.read { session in
            try await session.query("SELECT id FROM workflows WHERE tenant = $1 AND request_id = $2", [tenant, requestID])
                .first?.decode(String.self, column: "id")
        }
        guard let id else { return nil }
        return try await workflow(id: id, tenant: tenant)
    }

    /// Queued: sent with the next statement or COMMIT, like the rest of a new workflow's rows.
    private func insertQuery(_ workflow: NewWorkflow, transaction: StoreTransaction) throws {
        let query = workflow.query
        transaction.queue(
            """
            INSERT INTO queries (workflow_id, text, goals, inputs, planner, priority, constraints, labels, message, created_at, summary,
                                 graph_task_count)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
            """,
            [
                workflow.workflowID, query.text, query.goal?.artifacts ?? [], try JSONColumn.object(query.providedInputs),
                query.plannerHint ?? "", query.priority, try JSONColumn.encode(query.constraints), try JSONColumn.object(query.labels),
                try DomainJSONWriter.query(query), workflow.now.sqlTimestamp, try DomainJSONWriter.query(query.withoutExplicitGraph),
                query.explicitGraph.map { $0.tasks.count },
            ])
    }
}

extension PostgresWorkflowStore {
    /// Stores a DAG version and inserts `graph.newTasks` with their edges (queued statements, sent
    /// with the transaction's next statement or COMMIT), all in three statements
    /// whatever the size: the graph travels once (as the version's JSON, which the task insert
    /// also reads its specs from), per-task columns as arrays expanded with `unnest`.
    ///
    /// With `readyWithoutUpstream`, tasks whose counter is zero start ready, or leased when
    /// `leases` names an executor for them (creation; the caller appends their events with
    /// `appendRootsReady` and `appendDirectLeases`, last); otherwise they start pending and the
    /// caller recomputes counters (DAG updates).
    func insertGraph(
        _ graph: GraphRows, workflowID: String, version: Int, reason: String, author: String, workflowPriority: Int,
        now: UnixMillis, readyWithoutUpstream: Bool = true, leases: DirectLeaseColumns? = nil, transaction: StoreTransaction
    ) {
        transaction.queue(
            Self.insertGraphSQL,
            [
                workflowID, version, reason, author, graph.taskCount, graph.json, now.sqlTimestamp, graph.ordinals, workflowPriority,
                graph.newIDs, graph.newPayloads, graph.newRanks, graph.newUnfinished, readyWithoutUpstream,
                transaction.configuration.agingBucket(now),
                leases?.owners ?? [String?](repeating: nil, count: graph.newIDs.count),
                leases?.ttlMillis ?? [Int64?](repeating: nil, count: graph.newIDs.count),
            ])
        insertEdges(graph.edgeUpstream, graph.edgeDownstream, workflowID: workflowID, transaction: transaction)
    }

    /// `insertGraph`'s statement. $16 (executor id or NULL) and $17 (lease TTL in ms) per new task:
    /// a task without upstream tasks given an executor is stored leased to it, as a claim would
    /// leave it (`DispatchSQL.claim`: attempt and fencing token 1, lease expiry, start_to_close
    /// deadline, its attempt opened); the others start ready or pending.
    static let insertGraphSQL = """
        WITH version AS (
            INSERT INTO dag_versions (workflow_id, version, reason, author, task_count, graph, created_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7)
        ), spec AS (
            SELECT s.value AS m, s.ordinality AS n
              FROM jsonb_array_elements(convert_from($6, 'UTF8')::jsonb -> 'tasks') WITH ORDINALITY AS s
        ), source AS (
            SELECT spec.m, a.id, a.input, a.rank, a.unfinished,
                   CASE WHEN $14 AND a.unfinished = 0 THEN a.owner END AS owner, a.ttl,
                   CASE WHEN (spec.m ->> 'priority')::int <> 0 THEN (spec.m ->> 'priority')::int ELSE $9::int END AS priority
              FROM unnest($8::int8[], $10::uuid[], $11::bytea[], $12::float8[], $13::int4[], $16::text[], $17::int8[])
                   AS a(n, id, input, rank, unfinished, owner, ttl)
              JOIN spec ON spec.n = a.n
        ), inserted AS (
            INSERT INTO tasks (id, workflow_id, key, dag_version, state, max_attempts, unfinished_upstream, priority, rank,
                               dispatch_priority, required_capabilities, metadata, input, created_at, ready_at, updated_at,
                               attempt, fencing_token, lease_owner, lease_expires_at, lease_ttl_ms, deadline_at, started_at, tenant)
            SELECT s.id, $1, s.m ->> 'key', $2,
                   CASE WHEN s.owner IS NOT NULL THEN 'leased' WHEN $14 AND s.unfinished = 0 THEN 'ready' ELSE 'pending' END,
                   greatest(1, coalesce((s.m -> 'retry' ->> 'maxAttempts')::int, 1)), s.unfinished, s.priority, s.rank,
                   s.priority - $15, ARRAY(SELECT jsonb_array_elements_text(s.m -> 'requiredCapabilities')),
                   s.m, s.input, $7, CASE WHEN $14 AND s.unfinished = 0 THEN $7 END, $7,
                   CASE WHEN s.owner IS NOT NULL THEN 1 ELSE 0 END, CASE WHEN s.owner IS NOT NULL THEN 1 ELSE 0 END,
                   s.owner, CASE WHEN s.owner IS NOT NULL THEN $7 + s.ttl * interval '1 millisecond' END,
                   CASE WHEN s.owner IS NOT NULL THEN s.ttl ELSE 30000 END,  -- else the column's default
                   CASE WHEN s.owner IS NOT NULL THEN $7 + (s.m ->> 'timeoutSeconds')::bigint * interval '1 second' END,
                   CASE WHEN s.owner IS NOT NULL THEN $7 END,
                   -- The workflow's, for tenant-scoped claims (migration 0014); its row is written
                   -- earlier in the same transaction.
                   (SELECT w.tenant FROM workflows w WHERE w.id = $1)
              FROM source s
         RETURNING id, lease_owner, fencing_token
        ), attempts AS (
            INSERT INTO task_attempts (task_id, attempt, executor_id, fencing_token, leased_at)
            SELECT id, 1, lease_owner, fencing_token, $7 FROM inserted WHERE lease_owner IS NOT NULL
        )
        SELECT count(*) AS inserted FROM inserted
        """

    /// The task_ready events of a new graph's tasks without upstream tasks, in the DAG's order.
    private func appendRootsReady(
        _ graph: GraphRows, dag: Dag, workflowID: String, traceID: String, now: UnixMillis, transaction: StoreTransaction
    ) {
        var ids: [UUID] = []
        var keys: [String] = []
        for (position, unfinished) in graph.newUnfinished.enumerated() where unfinished == 0 {
            ids.append(graph.newIDs[position])
            keys.append(dag.tasks[Int(graph.ordinals[position]) - 1].key.rawValue)
        }
        guard !ids.isEmpty else { return }
        transaction.queue(
            """
            INSERT INTO workflow_events (workflow_id, type, at, task_id, task_key, task_state, trace_id, actor, request_trace_id)
            SELECT $1, 'task_ready', $2, e.id, e.k, 'ready', $3, $4::jsonb, $5
              FROM unnest($6::uuid[], $7::text[]) WITH ORDINALITY AS e(id, k, n)
             ORDER BY e.n
            """,
            [workflowID, now.sqlTimestamp, traceID, transaction.causeActor, transaction.causeTraceID, ids, keys])
        transaction.readiedTasks = true
        transaction.appendedEvents = true
    }

    func insertEdges(_ upstream: [UUID], _ downstream: [UUID], workflowID: String, transaction: StoreTransaction) {
        guard !upstream.isEmpty else { return }
        transaction.queue(
            """
            INSERT INTO edges (workflow_id, upstream_task_id, downstream_task_id)
            SELECT $1, e.u, e.d FROM unnest($2::uuid[], $3::uuid[]) AS e(u, d)
            """, [workflowID, upstream, downstream])
    }
}

/// A DAG laid out as the arrays the insert statements take.
struct GraphRows {
    /// The graph's JSON (stored as the version, and the source of the task specs).
    var json: [UInt8]
    var taskCount: Int
    var idsByKey: [TaskKey: UUID]
    /// 1-based positions in `dag.tasks` of the tasks to insert, with their columns.
    var ordinals: [Int64] = []
    var newIDs: [UUID] = []
    var newPayloads: [[UInt8]] = []
    var newRanks: [Double] = []
    var newUnfinished: [Int32] = []
    /// Every edge of the graph (deduplicated), as task ids.
    var edgeUpstream: [UUID] = []
    var edgeDownstream: [UUID] = []
    /// Upstream keys of each task.
    var upstreamKeys: [TaskKey: Set<TaskKey>] = [:]

    /// - Parameter existingIDs: ids of tasks that already exist (DAG updates); only the other
    ///   tasks are inserted.
    init(dag: Dag, payloads: [TaskKey: [UInt8]], ranks: [TaskKey: Double], existingIDs: [TaskKey: UUID] = [:]) throws {
        json = try DomainJSONWriter.dag(dag)
        taskCount = dag.tasks.count
        var ids: [TaskKey: UUID] = existingIDs
        for task in dag.tasks where ids[task.key] == nil { ids[task.key] = RandomUUID.make() }
        idsByKey = ids
        var seen = Set<Edge>()
        for edge in dag.edges where seen.insert(edge).inserted {
            guard let from = ids[edge.from], let to = ids[edge.to] else { continue }
            edgeUpstream.append(from)
            edgeDownstream.append(to)
            upstreamKeys[edge.to, default: []].insert(edge.from)
        }
        ordinals.reserveCapacity(dag.tasks.count)
        for (index, task) in dag.tasks.enumerated() where existingIDs[task.key] == nil {
            ordinals.append(Int64(index + 1))
            newIDs.append(ids[task.key]!)
            newPayloads.append(payloads[task.key] ?? [])
            newRanks.append(ranks[task.key] ?? 0)
            newUnfinished.append(Int32(upstreamKeys[task.key]?.count ?? 0))
        }
    }
}

private extension Query {
    /// What `queries.summary` holds (migration 0015).
    var withoutExplicitGraph: Query {
        var summary = self
        summary.explicitGraph = nil
        return summary
    }
}
