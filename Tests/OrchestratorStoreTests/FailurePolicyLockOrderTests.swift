import Foundation
import OrchestratorApp
import OrchestratorDomain
import OrchestratorStore
import PostgresClient
import Testing

/// A task's last attempt failing in a fail_fast workflow cancels the workflow's other tasks, and
/// must take their row locks before it appends its first event: appending holds the event-order
/// lock to commit (migration 0006), and a claim holds the tasks it leased while it waits for that
/// lock to append its task_leased events. Taken the other way round, the two deadlocked — found
/// by black-box testing: 2 to 4 deadlocks per failure with three executors busy on the same
/// workflow, the workflow failed 2.1 s after the failure report.
///
/// Each test holds a task row as a claim does between its UPDATE and its events, starts the
/// failure, waits until it queues on that row, then appends as the claim would.
@Suite("Failure policy lock order", .serialized)
struct FailurePolicyLockOrderTests {
    enum Ending: String, CaseIterable, CustomTestStringConvertible {
        case failureReport, releasedLease, expiredLease
        var testDescription: String { rawValue }
    }

    @Test("a fail_fast failure waiting for a task a claim holds does not deadlock with the claim's event append", arguments: Ending.allCases)
    func failFastWaitsWithoutTheEventLock(_ ending: Ending) async throws {
        // Three at once: the claimer's, the failure's, and the one that watches for its lock wait.
        try await TestDatabase.withStore(maxConnections: 4) { store, pool in
            let dag = Dag(tasks: [Fixtures.task("f", capabilities: ["f"]), Fixtures.task("g", capabilities: ["g"])])
            let id = try await store.createWorkflow(Fixtures.workflow(dag: dag)).workflow.workflowID
            let f = try #require(try await Fixtures.claim(store, executor: "exec-f", capabilities: ["f"], ttl: 1_000).first)
            try await pool.withConnection { claimer in
                _ = try await claimer.simpleQuery("BEGIN")
                _ = try await claimer.query("SELECT id FROM tasks WHERE workflow_id = $1 AND key = 'g' FOR NO KEY UPDATE", [id])
                let failing = Task { () -> WorkflowState? in
                    switch ending {
                    case .failureReport:
                        guard case .accepted(_, let state) = try await Fixtures.fail(store, f, retryable: false) else { return nil }
                        return state
                    case .releasedLease:
                        return try await store.releaseLeases(
                            [f.lease], executorID: "exec-f", sessionID: nil, reason: "stream ended", now: Fixtures.t0 + 10
                        ).first?.workflowState
                    case .expiredLease:
                        return try await store.expireLeases(now: Fixtures.t0 + 5_000, limit: 10).first?.workflowState
                    }
                }
                try await Self.waitForLockWait(pool)
                // The claim's append: the statement trigger takes the event-order lock.
                _ = try await claimer.query(
                    """
                    INSERT INTO workflow_events (workflow_id, type, at, task_key, trace_id)
                    VALUES ($1, 'task_leased', now(), 'g', 'trace')
                    """, [id])
                _ = try await claimer.simpleQuery("COMMIT")
                #expect(try await failing.value == .failed)
            }
            #expect(try await Fixtures.count(pool, "SELECT deadlocks::int FROM pg_stat_database WHERE datname = current_database()") == 0)
            #expect(try await Fixtures.states(store, id) == ["f": .failed, "g": .cancelled])
        }
    }

    /// Waits until some session of this database waits for a row lock (the failure, on task g).
    static func waitForLockWait(_ pool: PostgresPool) async throws {
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            let waiting = try await Fixtures.count(
                pool,
                """
                SELECT count(*)::int FROM pg_stat_activity
                 WHERE datname = current_database() AND wait_event_type = 'Lock' AND wait_event = 'transactionid'
                """)
            if waiting > 0 { return }
            try await Task.sleep(for: .milliseconds(20))
        }
        Issue.record("the failure never waited for the claimed task's row")
    }
}
