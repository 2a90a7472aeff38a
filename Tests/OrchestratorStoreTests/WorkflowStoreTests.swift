import Foundation
import OrchestratorApp
import OrchestratorDomain
import OrchestratorStore
import PostgresClient
import Testing

@Suite("PostgresWorkflowStore")
struct WorkflowStoreTests {
    @Test("a workflow, its first DAG version, tasks, edges and events are stored together")
    func createAndReadBack() async throws {
        try await TestDatabase.withStore { store, pool in
            let new = Fixtures.workflow(
                dag: Fixtures.diamond, ranks: ["a": 4, "b": 3, "c": 2, "d": 1], payloads: ["a": [0, 1, 2]], priority: 2,
                labels: ["team": "x"], inputs: ["url": "https://example.com"])
            let created = try await store.createWorkflow(new)
            #expect(created.created)
            let record = created.workflow
            #expect(record.workflowID == new.workflowID)
            #expect(record.state == .running)
            #expect(record.currentDagVersion == 1)
            #expect(record.query == new.query)
            #expect(record.labels == ["team": "x"])
            #expect(record.planning == new.planning)
            #expect(record.counts[.ready] == 1 && record.counts[.pending] == 3)
            #expect(record.createdAt == Fixtures.t0)

            let tasks = try await store.tasks(workflowID: new.workflowID)
            #expect(tasks.map(\.spec) == Fixtures.diamond.tasks)
            let byKey = Dictionary(uniqueKeysWithValues: tasks.map { ($0.spec.key, $0) })
            #expect(byKey["a"]?.state == .ready && byKey["a"]?.readyAt == Fixtures.t0 && byKey["a"]?.availableAt == Fixtures.t0)
            #expect(byKey["a"]?.payload == [0, 1, 2])
            #expect(byKey["a"]?.priority == 2)
            #expect(byKey["a"]?.rank == 4)
            #expect(byKey["d"]?.unfinishedUpstream == 2 && byKey["d"]?.state == .pending)
            #expect(byKey["b"]?.unfinishedUpstream == 1)
            #expect(tasks.allSatisfy { $0.tenant == "acme" && $0.traceID == new.traceID && $0.dagVersion == 1 })
            #expect(try await Fixtures.count(pool, "SELECT count(*) FROM edges") == 4)

            let version = try #require(try await store.dagVersion(workflowID: new.workflowID, version: nil))
            #expect(version.version == 1 && version.dag == Fixtures.diamond && version.author == "alice")

            let events = try await Fixtures.allEvents(store, pool, workflowID: new.workflowID)
            #expect(events.map(\.kind) == [.workflowSubmitted, .workflowPlanned, .taskReady])
            #expect(events[2].taskKey == "a" && events[2].taskID == byKey["a"]?.taskID)
            #expect(events[0].actor == new.actor)

            #expect(try await store.workflow(id: new.workflowID, tenant: "other") == nil)
            #expect(try await store.workflow(id: "wf_missing", tenant: nil) == nil)
        }
    }

    @Test("the record a creation returns is the one a read returns right after it")
    func createdRecordEqualsReadRecord() async throws {
        try await TestDatabase.withStore { store, _ in
            var delegated = Fixtures.workflow(dag: Dag(tasks: [Fixtures.task("plan")]))
            delegated.awaitingPlan = true
            var detailed = Fixtures.workflow(
                requestID: "req-record", dag: Fixtures.diamond, policy: .continueIndependent, priority: -3,
                labels: ["team": "x", "é": "ü"], inputs: ["url": "https://example.com"])
            detailed.planning = PlanningRecord(
                planner: "catalog", durationMicros: 1_234_567, rationale: "why", warnings: ["w1", "w2"], totalCost: 2.5)
            let empty = Fixtures.workflow(dag: Dag())
            for new in [detailed, delegated, empty, Fixtures.workflow(dag: Fixtures.independent(5))] {
                let created = try await store.createWorkflow(new)
                #expect(created.created)
                let read = try #require(try await store.workflow(id: new.workflowID, tenant: nil))
                #expect(created.workflow == read, "\(new.workflowID)")
                // The head (no query) agrees with the record, and is scoped by tenant alike.
                let head = try await store.workflowHead(id: new.workflowID, tenant: nil)
                #expect(head == WorkflowHead(
                    workflowID: read.workflowID, tenant: read.tenant, state: read.state, currentDagVersion: read.currentDagVersion))
                #expect(try await store.workflowHead(id: new.workflowID, tenant: read.tenant) == head)
                #expect(try await store.workflowHead(id: new.workflowID, tenant: "another-" + read.tenant) == nil)
            }
            #expect(try await store.workflowHead(id: "wf_missing", tenant: nil) == nil)
        }
    }

    @Test("reads that leave the query's graph out decode its summary and say so; rows from before 0015 are read whole")
    func queryGraphReads() async throws {
        try await TestDatabase.withStore { store, pool in
            let new = Fixtures.workflow(dag: Fixtures.diamond, labels: ["team": "x"], inputs: ["url": "u"])
            let id = try await store.createWorkflow(new).workflow.workflowID
            let whole = try #require(try await store.workflow(id: id, tenant: nil, queryGraph: .whole))
            #expect(whole.query.explicitGraph == Fixtures.diamond && !whole.queryGraphLeftOut)
            #expect(try await store.workflow(id: id, tenant: nil, queryGraph: .upTo(tasks: 4)) == whole)
            var summary = whole
            summary.query.explicitGraph = nil
            summary.queryGraphLeftOut = true
            #expect(try await store.workflow(id: id, tenant: nil, queryGraph: .upTo(tasks: 3)) == summary)
            #expect(try await store.workflow(id: id, tenant: nil, queryGraph: .none) == summary)
            #expect(try await store.listWorkflows(WorkflowListQuery(tenant: "acme")).workflows.first { $0.workflowID == id } == summary)

            // Without an explicit graph nothing is left out.
            var planned = Fixtures.workflow(dag: Fixtures.diamond)
            planned.query.explicitGraph = nil
            let plannedID = try await store.createWorkflow(planned).workflow.workflowID
            for read in [QueryGraphRead.none, .upTo(tasks: 3), .whole] {
                let plannedRead = try #require(try await store.workflow(id: plannedID, tenant: nil, queryGraph: read))
                #expect(!plannedRead.queryGraphLeftOut && plannedRead.query.explicitGraph == nil)
            }

            // A row a 0.3.0 server wrote has no summary: read whole whatever is asked.
            try await pool.withConnection { session in
                _ = try await session.query("UPDATE queries SET summary = NULL, graph_task_count = NULL WHERE workflow_id = $1", [id])
            }
            #expect(try await store.workflow(id: id, tenant: nil, queryGraph: .none) == whole)
            #expect(try await store.listWorkflows(WorkflowListQuery(tenant: "acme")).workflows.first { $0.workflowID == id } == whole)
        }
    }

    @Test("a retried submission with the same request id returns the first workflow")
    func idempotentSubmit() async throws {
        try await TestDatabase.withStore { store, pool in
            let first = try await store.createWorkflow(Fixtures.workflow(requestID: "req-1", dag: Fixtures.diamond))
            let again = try await store.createWorkflow(Fixtures.workflow(requestID: "req-1", dag: Fixtures.diamond))
            #expect(first.created && !again.created)
            #expect(again.workflow.workflowID == first.workflow.workflowID)
            // Another tenant may use the same request id.
            let other = try await store.createWorkflow(Fixtures.workflow(tenant: "globex", requestID: "req-1", dag: Fixtures.diamond))
            #expect(other.created && other.workflow.workflowID != first.workflow.workflowID)
            #expect(try await Fixtures.count(pool, "SELECT count(*) FROM workflows") == 2)
        }
    }

    @Test("concurrent submissions with one request id make exactly one workflow")
    func idempotentSubmitRace() async throws {
        try await TestDatabase.withStore(maxConnections: 8) { store, pool in
            let results = try await withThrowingTaskGroup(of: CreatedWorkflow.self) { group in
                for _ in 0..<8 {
                    group.addTask { try await store.createWorkflow(Fixtures.workflow(requestID: "same", dag: Fixtures.diamond)) }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(results.filter(\.created).count == 1)
            #expect(Set(results.map(\.workflow.workflowID)).count == 1)
            #expect(try await Fixtures.count(pool, "SELECT count(*) FROM workflows") == 1)
            #expect(try await Fixtures.count(pool, "SELECT count(*) FROM tasks") == 4)
        }
    }

    @Test("a failed transaction leaves no trace")
    func failedTransactionLeavesNoTrace() async throws {
        try await TestDatabase.withStore { store, pool in
            // Two tasks with one key violate tasks_workflow_key_key in the middle of the transaction.
            let broken = Dag(tasks: [Fixtures.task("a"), Fixtures.task("a")])
            await #expect(throws: PostgresError.self) { try await store.createWorkflow(Fixtures.workflow(requestID: "r", dag: broken)) }
            for table in ["workflows", "queries", "dag_versions", "tasks", "edges", "workflow_events"] {
                let rows = try await Fixtures.count(pool, "SELECT count(*) FROM \(table)")
                #expect(rows == 0, "\(table)")
            }
            // The request id is free again.
            let retried = try await store.createWorkflow(Fixtures.workflow(requestID: "r", dag: Fixtures.diamond))
            #expect(retried.created)
        }
    }

    @Test("a list page ends before the workflow that would take it past its byte budget, one workflow at least")
    func listPagesByBytes() async throws {
        try await TestDatabase.withStore { store, _ in
            var ids: [String] = []
            for index in 0..<4 {
                // 300 KB of inputs each (the last one 1.5 MB: a page of its own).
                let size = index == 3 ? 1_500_000 : 300_000
                let new = Fixtures.workflow(dag: Fixtures.diamond, inputs: ["doc": String(repeating: "x", count: size)], now: Fixtures.t0 + Int64(index))
                ids.append(try await store.createWorkflow(new).workflow.workflowID)
            }
            var pages: [[String]] = []
            var token: String?
            repeat {
                let page = try await store.listWorkflows(WorkflowListQuery(tenant: "acme", pageToken: token, maxBytes: 1_000_000))
                pages.append(page.workflows.map(\.workflowID))
                token = page.nextPageToken
            } while token != nil
            #expect(pages == [[ids[3]], [ids[2], ids[1], ids[0]]])
            #expect(try await store.listWorkflows(WorkflowListQuery(tenant: "acme", maxBytes: 500_000)).workflows.map(\.workflowID) == [ids[3]])
        }
    }

    @Test("listing filters by tenant, state and labels and pages newest first")
    func listWorkflows() async throws {
        try await TestDatabase.withStore { store, _ in
            var ids: [String] = []
            for index in 0..<5 {
                let created = try await store.createWorkflow(
                    Fixtures.workflow(dag: Fixtures.diamond, labels: ["n": "\(index % 2)"], now: Fixtures.t0 + Int64(index)))
                ids.append(created.workflow.workflowID)
            }
            _ = try await store.createWorkflow(Fixtures.workflow(tenant: "globex", dag: Fixtures.diamond))
            _ = try await store.cancelWorkflow(id: ids[0], tenant: nil, reason: "no", actor: Fixtures.actor, now: Fixtures.t0 + 10)

            var seen: [String] = []
            var token: String?
            repeat {
                let page = try await store.listWorkflows(WorkflowListQuery(tenant: "acme", pageSize: 2, pageToken: token))
                #expect(page.workflows.count <= 2)
                seen += page.workflows.map(\.workflowID)
                token = page.nextPageToken
            } while token != nil
            #expect(seen == ids.reversed())

            let even = try await store.listWorkflows(WorkflowListQuery(tenant: "acme", labels: ["n": "0"]))
            #expect(Set(even.workflows.map(\.workflowID)) == [ids[0], ids[2], ids[4]])
            let cancelled = try await store.listWorkflows(WorkflowListQuery(tenant: nil, states: [.cancelled]))
            #expect(cancelled.workflows.map(\.workflowID) == [ids[0]])
            let window = try await store.listWorkflows(
                WorkflowListQuery(tenant: "acme", createdAfter: Fixtures.t0 + 1, createdBefore: Fixtures.t0 + 3))
            #expect(window.workflows.map(\.workflowID) == [ids[2], ids[1]])
            #expect(try await store.listWorkflows(WorkflowListQuery(tenant: nil)).workflows.count == 6)
        }
    }

    @Test("a DAG update adds tasks, rewires counters, readies what it can and keeps the history")
    func updateDag() async throws {
        try await TestDatabase.withStore { store, pool in
            let v1 = Dag(tasks: [Fixtures.task("a"), Fixtures.task("b"), Fixtures.task("x")], edges: [Edge("a", "b"), Edge("a", "x")])
            let id = try await store.createWorkflow(Fixtures.workflow(dag: v1)).workflow.workflowID
            let a = try #require(try await Fixtures.claim(store).first)
            _ = try await Fixtures.complete(store, a)
            // v2: x removed (ready, never started), c after a (already succeeded → ready), d after b.
            let v2 = Dag(
                tasks: [Fixtures.task("a"), Fixtures.task("b"), Fixtures.task("c"), Fixtures.task("d")],
                edges: [Edge("a", "b"), Edge("a", "c"), Edge("b", "d")])
            let stored = try await store.updateDag(
                DagUpdate(
                    workflowID: id, tenant: "acme", expectedVersion: 1, newDag: v2, ranks: ["c": 7], reason: "grow", actor: Fixtures.actor,
                    now: Fixtures.t0 + 5))
            #expect(stored.version == 2 && stored.dag == v2 && stored.reason == "grow")
            #expect(try await Fixtures.states(store, id) == ["a": .succeeded, "b": .ready, "c": .ready, "d": .pending])
            let tasks = try await store.tasks(workflowID: id)
            #expect(tasks.first { $0.spec.key == "c" }?.rank == 7)
            #expect(tasks.first { $0.spec.key == "d" }?.unfinishedUpstream == 1)
            #expect(tasks.first { $0.spec.key == "c" }?.dagVersion == 2)

            let history = try await store.dagHistory(workflowID: id)
            #expect(history.map(\.version) == [1, 2])
            #expect(history.map(\.taskCount) == [v1.tasks.count, v2.tasks.count] && history[1].reason == "grow")
            #expect(try await store.dagVersion(workflowID: id, version: 1)?.dag == v1)
            #expect(try await store.workflow(id: id, tenant: nil)?.currentDagVersion == 2)
            let events = try await Fixtures.allEvents(store, pool, workflowID: id)
            #expect(events.contains { $0.kind == .dagUpdated && $0.dagVersion == 2 && $0.message == "grow" })
            #expect(events.contains { $0.kind == .taskReady && $0.taskKey == "c" })
        }
    }

    @Test("a task removed in retry_wait goes with its attempts (no foreign key cascades them since migration 0010)")
    func updateDagRemovesAttempts() async throws {
        try await TestDatabase.withStore { store, pool in
            let retry = RetryPolicy(maxAttempts: 3, initialBackoffMillis: 60_000)
            let v1 = Dag(tasks: [Fixtures.task("keep"), Fixtures.task("flaky", retry: retry)])
            let id = try await store.createWorkflow(Fixtures.workflow(dag: v1)).workflow.workflowID
            let claimed = try await Fixtures.claim(store)
            let flaky = try #require(claimed.first { $0.task.spec.key == "flaky" })
            _ = try await Fixtures.fail(store, flaky, retryable: true)
            let state = try await pool.withConnection { session in
                try await session.query("SELECT state FROM tasks WHERE id = $1::uuid", [flaky.task.taskID])[0].decode(String.self, column: "state")
            }
            #expect(state == "retry_wait")
            func attempts() async throws -> Int {
                try await pool.withConnection { session in
                    try await session.query(
                        "SELECT count(*) AS n FROM task_attempts WHERE task_id = $1::uuid", [flaky.task.taskID]
                    )[0].decode(Int.self, column: "n")
                }
            }
            #expect(try await attempts() == 1)
            _ = try await store.updateDag(
                DagUpdate(workflowID: id, tenant: nil, expectedVersion: 1, newDag: Dag(tasks: [Fixtures.task("keep")]), ranks: [:],
                          reason: "drop flaky", actor: Fixtures.actor, now: Fixtures.t0 + 1))
            #expect(try await Fixtures.states(store, id) == ["keep": .leased])
            #expect(try await attempts() == 0)
        }
    }

    @Test("an update skips new tasks below a failed one and sends a ready task that gained an upstream back to pending")
    func updateDagRecountsStates() async throws {
        try await TestDatabase.withStore { store, _ in
            // "a" has the higher priority, so the first claim of one task takes it.
            let v1 = Dag(tasks: [Fixtures.task("a", priority: 1), Fixtures.task("b")])
            let id = try await store.createWorkflow(Fixtures.workflow(dag: v1, policy: .continueIndependent)).workflow.workflowID
            let a = try #require(try await Fixtures.claim(store, limit: 1).first)
            #expect(a.task.spec.key == "a")
            _ = try await Fixtures.fail(store, a, retryable: false)
            let v2 = Dag(
                tasks: [Fixtures.task("a", priority: 1), Fixtures.task("b"), Fixtures.task("c"), Fixtures.task("d")],
                edges: [Edge("a", "c"), Edge("d", "b")])
            _ = try await store.updateDag(
                DagUpdate(workflowID: id, tenant: nil, expectedVersion: 1, newDag: v2, ranks: [:], reason: "r", actor: Fixtures.actor, now: Fixtures.t0))
            #expect(try await Fixtures.states(store, id) == ["a": .failed, "b": .pending, "c": .skipped, "d": .ready])
            let d = try #require(try await Fixtures.claim(store).first)
            #expect(d.task.spec.key == "d")
            _ = try await Fixtures.complete(store, d)
            let b = try #require(try await Fixtures.claim(store).first)
            #expect(b.task.spec.key == "b")
            #expect(try await Fixtures.complete(store, b) == .accepted(taskState: .succeeded, workflowState: .failed))
        }
    }

    @Test("an update against a stale version conflicts and writes nothing")
    func versionConflict() async throws {
        try await TestDatabase.withStore { store, pool in
            let id = try await store.createWorkflow(Fixtures.workflow(dag: Fixtures.diamond)).workflow.workflowID
            var grown = Fixtures.diamond
            grown.tasks.append(Fixtures.task("e"))
            _ = try await store.updateDag(
                DagUpdate(workflowID: id, tenant: nil, expectedVersion: 1, newDag: grown, ranks: [:], reason: "one", actor: Fixtures.actor, now: Fixtures.t0))
            let tasksBefore = try await store.tasks(workflowID: id)
            let eventsBefore = try await Fixtures.count(pool, "SELECT count(*) FROM workflow_events")
            var other = Fixtures.diamond
            other.tasks.append(Fixtures.task("f"))
            await #expect(throws: StoreError.versionConflict(expected: 1, current: 2)) {
                try await store.updateDag(
                    DagUpdate(workflowID: id, tenant: nil, expectedVersion: 1, newDag: other, ranks: [:], reason: "two", actor: Fixtures.actor, now: Fixtures.t0))
            }
            #expect(try await store.tasks(workflowID: id) == tasksBefore)
            #expect(try await store.dagHistory(workflowID: id).count == 2)
            #expect(try await Fixtures.count(pool, "SELECT count(*) FROM workflow_events") == eventsBefore)
        }
    }

    @Test("removing a task that started is refused")
    func removingStartedTask() async throws {
        try await TestDatabase.withStore { store, _ in
            let id = try await store.createWorkflow(Fixtures.workflow(dag: Fixtures.diamond)).workflow.workflowID
            _ = try await Fixtures.claim(store)
            let without = Dag(tasks: [Fixtures.task("b")])
            await #expect(throws: StoreError.tasksAlreadyStarted(["a"])) {
                try await store.updateDag(
                    DagUpdate(workflowID: id, tenant: nil, expectedVersion: 1, newDag: without, ranks: [:], reason: "x", actor: Fixtures.actor, now: Fixtures.t0))
            }
            #expect(try await store.dagHistory(workflowID: id).count == 1)
        }
    }

    @Test("cancelling cancels every unfinished task and returns the revoked leases")
    func cancel() async throws {
        try await TestDatabase.withStore { store, pool in
            let id = try await store.createWorkflow(Fixtures.workflow(dag: Fixtures.diamond)).workflow.workflowID
            let a = try #require(try await Fixtures.claim(store).first)
            let result = try await store.cancelWorkflow(id: id, tenant: "acme", reason: "user asked", actor: Fixtures.actor, now: Fixtures.t0 + 1)
            #expect(result.workflow.state == .cancelled)
            #expect(result.revokedLeases.map(\.lease) == [a.lease])
            #expect(result.revokedLeases.map(\.executorID) == ["exec-1"])
            #expect(try await Fixtures.states(store, id).values.allSatisfy { $0 == .cancelled })
            // The revoked holder's report is stale and changes nothing.
            #expect(try await Fixtures.complete(store, a) == .staleLease(currentToken: 1, state: .cancelled, tenant: "acme"))
            await #expect(throws: StoreError.workflowFinished(id, .cancelled)) {
                try await store.cancelWorkflow(id: id, tenant: nil, reason: "again", actor: Fixtures.actor, now: Fixtures.t0 + 2)
            }
            await #expect(throws: StoreError.notFound("workflow \(id)")) {
                try await store.cancelWorkflow(id: id, tenant: "globex", reason: "x", actor: Fixtures.actor, now: Fixtures.t0 + 2)
            }
            let kinds = try await Fixtures.allEvents(store, pool, workflowID: id).map(\.kind)
            #expect(kinds.filter { $0 == .taskCancelled }.count == 4)
            #expect(kinds.last == .workflowCancelled)
        }
    }
}
