import OrchestratorApp
import OrchestratorDomain
import PostgresClient
import Synchronization
import Testing

@testable import OrchestratorStore

/// Retention deletes finished workflows past a cutoff with every row they own, oldest first, and
/// nothing else (migration 0017, `RetentionService`).
@Suite("Retention")
struct RetentionTests {
    @Test func prunesFinishedWorkflowsPastTheCutoffWithEverythingTheyOwn() async throws {
        try await TestDatabase.withStore { store, pool in
            let succeeded = try await Self.finished(store, dag: Fixtures.diamond, at: Fixtures.t0)
            let failed = try await Self.finished(store, dag: Fixtures.independent(2), failing: true, at: Fixtures.t0 + 100)
            let cancelled = Fixtures.workflow(dag: Fixtures.independent(3))
            _ = try await store.createWorkflow(cancelled)
            _ = try await store.cancelWorkflow(id: cancelled.workflowID, tenant: nil, reason: "no", actor: Fixtures.actor, now: Fixtures.t0 + 200)
            let recent = try await Self.finished(store, dag: Fixtures.diamond, at: Fixtures.t0 + 10_000)
            let running = Fixtures.workflow(dag: Fixtures.diamond)
            _ = try await store.createWorkflow(running)
            _ = try await Fixtures.claim(store, limit: 1)

            let kept = [recent, running.workflowID]
            let keptRows = try await Self.rows(pool, of: kept)
            let prunedEvents = try await Fixtures.allEvents(store, pool).filter { $0.workflowID != recent && $0.workflowID != running.workflowID }
            #expect(keptRows.values.allSatisfy { $0 > 0 }, "\(keptRows)")

            let pass = try await store.pruneFinishedWorkflows(finishedBefore: Fixtures.t0 + 5_000, limit: 100)
            #expect(pass == PrunedWorkflows(workflows: 3, tasks: 4 + 2 + 3, events: prunedEvents.count))

            // What is left is exactly the kept workflows' rows: no table kept a row of a pruned one.
            #expect(try await Self.rows(pool, of: nil) == keptRows)
            for id in [succeeded, failed, cancelled.workflowID] {
                #expect(try await store.workflow(id: id, tenant: nil) == nil)
            }
            #expect(try await store.workflow(id: recent, tenant: nil)?.state == .succeeded)
            #expect(try await store.workflow(id: running.workflowID, tenant: nil)?.state == .running)
            #expect(try await store.pruneFinishedWorkflows(finishedBefore: Fixtures.t0 + 5_000, limit: 100) == PrunedWorkflows())
        }
    }

    @Test func oldestGoFirstAndAPassStopsAtItsRowBudget() async throws {
        try await TestDatabase.withStore { store, pool in
            let third = try await Self.finished(store, dag: Fixtures.independent(3), at: Fixtures.t0 + 3_000)
            let first = try await Self.finished(store, dag: Fixtures.independent(3), at: Fixtures.t0 + 1_000)
            let second = try await Self.finished(store, dag: Fixtures.independent(3), at: Fixtures.t0 + 2_000)
            let fourth = try await Self.finished(store, dag: Fixtures.independent(3), at: Fixtures.t0 + 4_000)
            let cutoff = Fixtures.t0 + 5_000
            // The second reported progress 100 times: its events are most of its rows.
            try await pool.withConnection { session in
                _ = try await session.query(
                    "INSERT INTO workflow_events (workflow_id, type, at) SELECT $1, 'task_progress', now() FROM generate_series(1, 100)", [second])
            }

            // A budget smaller than one workflow still takes the oldest one whole.
            let firstEvents = try await Self.eventCount(pool, first)
            #expect(try await store.workflows.pruneFinishedWorkflows(finishedBefore: cutoff, limit: 10, rowBudget: 1)
                == PrunedWorkflows(workflows: 1, tasks: 3, events: firstEvents))
            #expect(try await store.workflow(id: first, tenant: nil) == nil)
            // Workflows are taken while the rows (tasks and events) taken before them are under the
            // budget: the second alone fills this one, so the third waits, though by tasks alone
            // (3 before it) it would have gone too.
            let secondEvents = try await Self.eventCount(pool, second)
            #expect(secondEvents > 100)
            #expect(try await store.workflows.pruneFinishedWorkflows(finishedBefore: cutoff, limit: 10, rowBudget: 3 + secondEvents)
                == PrunedWorkflows(workflows: 1, tasks: 3, events: secondEvents))
            #expect(try await store.workflow(id: third, tenant: nil) != nil)
            let thirdEvents = try await Self.eventCount(pool, third)
            let fourthEvents = try await Self.eventCount(pool, fourth)
            #expect(try await store.workflows.pruneFinishedWorkflows(finishedBefore: cutoff, limit: 10, rowBudget: 3 + thirdEvents + 1)
                == PrunedWorkflows(workflows: 2, tasks: 6, events: thirdEvents + fourthEvents))
        }
    }

    @Test func leavesAWorkflowAnotherTransactionHoldsForTheNextPass() async throws {
        try await TestDatabase.withStore { store, pool in
            let held = try await Self.finished(store, dag: Fixtures.independent(1), at: Fixtures.t0)
            let free = try await Self.finished(store, dag: Fixtures.independent(1), at: Fixtures.t0 + 1)
            try await pool.withTransaction { session in
                // As a late UpdateDag or CancelWorkflow holds it before refusing.
                _ = try await session.query("SELECT id FROM workflows WHERE id = $1 FOR NO KEY UPDATE", [held])
                let pass = try await store.pruneFinishedWorkflows(finishedBefore: Fixtures.t0 + 5_000, limit: 10)
                #expect(pass.workflows == 1)
                #expect(try await store.workflow(id: free, tenant: nil) == nil)
            }
            #expect(try await store.workflow(id: held, tenant: nil) != nil)
            #expect(try await store.pruneFinishedWorkflows(finishedBefore: Fixtures.t0 + 5_000, limit: 10).workflows == 1)
            #expect(try await store.workflow(id: held, tenant: nil) == nil)
        }
    }

    @Test func neverDeletesAWorkflowWithAnUnfinishedTask() async throws {
        try await TestDatabase.withStore { store, pool in
            let new = Fixtures.workflow(dag: Fixtures.independent(2))
            _ = try await store.createWorkflow(new)
            // A state no path writes: a finished workflow whose tasks still run.
            try await pool.withConnection { session in
                _ = try await session.query(
                    "UPDATE workflows SET state = 'failed', finished_at = $2 WHERE id = $1", [new.workflowID, Fixtures.t0.sqlTimestamp])
            }
            #expect(try await store.pruneFinishedWorkflows(finishedBefore: Fixtures.t0 + 5_000, limit: 10) == PrunedWorkflows())
            #expect(try await store.tasks(workflowID: new.workflowID).count == 2)
        }
    }

    @Test func theServiceDeletesEverythingDuePassAfterPass() async throws {
        try await TestDatabase.withStore { store, _ in
            var due: [String] = []
            for index in 0..<5 { due.append(try await Self.finished(store, dag: Fixtures.independent(1), at: Fixtures.t0 + UnixMillis(index))) }
            let young = try await Self.finished(store, dag: Fixtures.independent(1), at: Fixtures.t0 + 60_000)
            let passes = Counted()
            let service = RetentionService(
                retention: .seconds(30), store: store, workflowsPerPass: 2, clock: FixedClock(instant: Fixtures.t0 + 31_000),
                pruned: { passes.add($0) })
            let total = try await service.pruneExpired()
            #expect(total.workflows == 5 && total.tasks == 5)
            // 2 + 2 + 1, then an empty pass says nothing more is due.
            #expect(passes.workflowsPerPass == [2, 2, 1, 0])
            for id in due { #expect(try await store.workflow(id: id, tenant: nil) == nil) }
            #expect(try await store.workflow(id: young, tenant: nil) != nil)
        }
    }

    /// Creates a workflow and runs it to its end at `at`: every task completed, or the first failed.
    static func finished(_ store: PostgresStore, dag: Dag, failing: Bool = false, at now: UnixMillis) async throws -> String {
        let new = Fixtures.workflow(dag: dag, now: now)
        _ = try await store.createWorkflow(new)
        while true {
            let claimed = try await Fixtures.claim(store, limit: 100, now: now)
            guard !claimed.isEmpty else { break }
            for task in claimed {
                _ = failing ? try await Fixtures.fail(store, task, retryable: false, now: now) : try await Fixtures.complete(store, task, now: now)
            }
        }
        let record = try #require(try await store.workflow(id: new.workflowID, tenant: nil))
        #expect(record.state == (failing ? .failed : .succeeded))
        return new.workflowID
    }

    static func eventCount(_ pool: PostgresPool, _ workflowID: String) async throws -> Int {
        try await Fixtures.count(pool, "SELECT count(*) FROM workflow_events WHERE workflow_id = $1", [workflowID])
    }

    /// Rows per table belonging to `workflowIDs` (nil: every row of the table).
    static func rows(_ pool: PostgresPool, of workflowIDs: [String]?) async throws -> [String: Int] {
        let ids = workflowIDs ?? []
        let all = workflowIDs == nil
        let queries = [
            "workflows": "SELECT count(*) FROM workflows WHERE $2 OR id = ANY($1)",
            "queries": "SELECT count(*) FROM queries WHERE $2 OR workflow_id = ANY($1)",
            "dag_versions": "SELECT count(*) FROM dag_versions WHERE $2 OR workflow_id = ANY($1)",
            "tasks": "SELECT count(*) FROM tasks WHERE $2 OR workflow_id = ANY($1)",
            "edges": "SELECT count(*) FROM edges WHERE $2 OR workflow_id = ANY($1)",
            "task_attempts": "SELECT count(*) FROM task_attempts a WHERE $2 OR a.task_id IN (SELECT id FROM tasks WHERE workflow_id = ANY($1))",
            "workflow_events": "SELECT count(*) FROM workflow_events WHERE $2 OR workflow_id = ANY($1)",
        ]
        var counts: [String: Int] = [:]
        for (table, sql) in queries { counts[table] = try await Fixtures.count(pool, sql, [ids, all]) }
        return counts
    }
}

private struct FixedClock: WallClock {
    let instant: UnixMillis
    func now() -> UnixMillis { instant }
}

private final class Counted: Sendable {
    private let passes = Mutex<[PrunedWorkflows]>([])
    func add(_ pass: PrunedWorkflows) { passes.withLock { $0.append(pass) } }
    var workflowsPerPass: [Int] { passes.withLock { $0.map(\.workflows) } }
}

/// Reads of a workflow that retention deleted between the caller's look-up and the read.
@Suite("Reads of a deleted workflow")
struct DeletedWorkflowReadTests {
    /// ListTasks reads the keys, then the rows: a workflow deleted before or between them came
    /// back as an empty page (with a next page token when between). An empty read now asks whether
    /// the workflow is still there; here it was deleted before the page was read.
    @Test func aTaskPageOfAWorkflowThatIsGoneIsNotFound() async throws {
        try await TestDatabase.withStore { store, _ in
            let gone = try await RetentionTests.finished(store, dag: Fixtures.independent(3), at: Fixtures.t0)
            let page = try await store.taskPage(TaskPageQuery(
                workflowID: gone, states: [], pageSize: 2, maxBytes: 1 << 20, includeResults: true, pageToken: nil))
            #expect(page.tasks.count == 2 && page.nextPageToken != nil)
            _ = try await store.pruneFinishedWorkflows(finishedBefore: Fixtures.t0 + 1, limit: 10)
            await #expect(throws: StoreError.notFound("workflow \(gone)")) {
                try await store.taskPage(TaskPageQuery(
                    workflowID: gone, states: [], pageSize: 2, maxBytes: 1 << 20, includeResults: true, pageToken: page.nextPageToken))
            }
        }
    }
}
