import Foundation
import OrchestratorApp
import OrchestratorDomain
import OrchestratorStore
import PostgresClient
import Testing

/// start_to_close timeouts (TaskSpec.timeoutSeconds) against a real PostgreSQL: the claim sets
/// `deadline_at`, and the reaper's sweep (`expireLeases`) fails attempts past it as retryable
/// with source `timeout`, revoking their lease.
@Suite("Attempt timeouts")
struct TaskTimeoutTests {
    static func timed(_ key: TaskKey, seconds: Int?, attempts: Int) -> TaskSpec {
        var spec = Fixtures.task(key, retry: RetryPolicy(maxAttempts: attempts, initialBackoffMillis: 0))
        spec.timeoutSeconds = seconds
        return spec
    }

    @Test("an attempt past its timeout is requeued (retryable, source timeout) and the late report is refused; the last attempt fails")
    func timeoutRetriesThenFails() async throws {
        try await TestDatabase.withStore { store, pool in
            let dag = Dag(tasks: [Self.timed("slow", seconds: 2, attempts: 2), Self.timed("untimed", seconds: nil, attempts: 1)])
            let id = try await store.createWorkflow(Fixtures.workflow(dag: dag)).workflow.workflowID
            let first = try await Fixtures.claim(store, ttl: 60_000)
            let slow = try #require(first.first { $0.task.spec.key == "slow" })
            #expect(first.count == 2)

            // Within the timeout (and the lease): nothing happens.
            #expect(try await store.expireLeases(now: Fixtures.t0 + 1_999, limit: 10).isEmpty)
            // Past it, though the lease (60 s) still holds: the attempt times out.
            let timedOut = try await store.expireLeases(now: Fixtures.t0 + 2_001, limit: 10)
            #expect(timedOut.map(\.lease) == [slow.lease])
            #expect(timedOut.map(\.cause) == [.timeout] && timedOut.map(\.newState) == [.ready])

            // The executor's late completion is refused and changes nothing.
            let late = try await Fixtures.complete(store, slow, now: Fixtures.t0 + 2_500)
            #expect(late == .staleLease(currentToken: 1, state: .ready, tenant: "acme"))
            let task = try #require(try await store.tasks(workflowID: id).first { $0.spec.key == "slow" })
            #expect(task.state == .ready && task.result == nil)
            let failure = try #require(task.lastError)
            #expect(failure.source == .timeout && failure.retryable && failure.code == "timeout")
            #expect(failure.message.contains("longer than 2 s"))
            #expect(try await Fixtures.count(pool, "SELECT count(*) FROM task_attempts WHERE outcome = 'timed_out'") == 1)

            // The second (last) attempt gets a fresh deadline from its own claim, and times out too.
            let second = try #require(try await Fixtures.claim(store, executor: "exec-2", ttl: 60_000, now: Fixtures.t0 + 3_000).first)
            #expect(second.lease.fencingToken == 2)
            #expect(try await store.expireLeases(now: Fixtures.t0 + 4_999, limit: 10).isEmpty)
            let final = try await store.expireLeases(now: Fixtures.t0 + 5_001, limit: 10)
            #expect(final.map(\.newState) == [.failed] && final.map(\.cause) == [.timeout])
            let record = try #require(try await store.workflow(id: id, tenant: nil))
            #expect(record.state == .failed)  // fail_fast: the untimed task was cancelled with it
            #expect(try await Fixtures.states(store, id) == ["slow": .failed, "untimed": .cancelled])
        }
    }

    @Test("tasks without a timeout only answer to their lease")
    func noTimeout() async throws {
        try await TestDatabase.withStore { store, _ in
            let dag = Dag(tasks: [Self.timed("untimed", seconds: nil, attempts: 1)])
            let id = try await store.createWorkflow(Fixtures.workflow(dag: dag)).workflow.workflowID
            let claimed = try #require(try await Fixtures.claim(store, ttl: 60_000).first)
            #expect(try await store.expireLeases(now: Fixtures.t0 + 59_000, limit: 10).isEmpty)
            #expect(try await Fixtures.complete(store, claimed, now: Fixtures.t0 + 59_000)
                == .accepted(taskState: .succeeded, workflowState: .succeeded))
            #expect(try await store.workflow(id: id, tenant: nil)?.state == .succeeded)
        }
    }

    @Test("the sweep is served by tasks_deadline_idx")
    func sweepUsesIndex() async throws {
        try await TestDatabase.withStore { store, pool in
            let plan = try await pool.withConnection { session in
                try await session.query("SET enable_seqscan = off")
                return try await session.query(
                    "EXPLAIN SELECT id FROM tasks WHERE state IN ('leased', 'running') AND deadline_at IS NOT NULL AND deadline_at < now()")
                    .map { try $0.decode(String.self, at: 0) }.joined(separator: "\n")
            }
            #expect(plan.contains("tasks_deadline_idx"))
        }
    }
}
