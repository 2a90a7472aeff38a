import OrchestratorDomain
import PostgresClient
import Testing

@testable import OrchestratorStore

/// A workflow's task counts come with every workflow read (ListWorkflows pages included); they are
/// counted from tasks_workflow_key_key, which holds each task's state (migration 0016), without
/// reading the tasks' heap pages once those are all-visible.
@Suite("Task counts")
struct TaskCountsTests {
    @Test func countsOfAVacuumedWorkflowReadNoHeapPage() async throws {
        try await TestDatabase.withStore { store, pool in
            let new = Fixtures.workflow(dag: Fixtures.independent(40))
            _ = try await store.createWorkflow(new)
            let claimed = try await Fixtures.claim(store, limit: 15)
            for task in claimed.prefix(5) { _ = try await Fixtures.complete(store, task) }
            try await pool.withConnection { try await $0.simpleQuery("VACUUM tasks") }

            // The planner is kept off scans that read the heap anyway, so what is checked is that
            // the index alone can answer, whichever plan a table this small would get otherwise.
            let settings = [PostgresSetting("enable_seqscan", "off"), PostgresSetting("enable_bitmapscan", "off")]
            let plan = try await pool.withTransaction(settings: settings) { session in
                try await session.query(
                    "EXPLAIN (ANALYZE, FORMAT JSON) SELECT \(WorkflowRow.taskCounts) AS counts FROM workflows w"
                )[0].decode(String.self, at: 0)
            }
            #expect(plan.contains("\"Index Only Scan\""), "\(plan)")
            #expect(plan.contains("\"Index Name\": \"tasks_workflow_key_key\""), "\(plan)")
            #expect(plan.contains("\"Heap Fetches\": 0"), "\(plan)")

            let record = try #require(try await store.workflow(id: new.workflowID, tenant: nil))
            #expect(record.counts[.succeeded] == 5 && record.counts[.leased] == 10 && record.counts[.ready] == 25)
        }
    }

    @Test func keysStayUniqueWithinAWorkflow() async throws {
        try await TestDatabase.withStore { store, pool in
            _ = try await store.createWorkflow(Fixtures.workflow(dag: Fixtures.independent(2)))
            await #expect(throws: PostgresError.self) {
                try await pool.withConnection { session in
                    try await session.query(
                        """
                        INSERT INTO tasks (id, workflow_id, key, dag_version, state, max_attempts, unfinished_upstream, created_at, updated_at)
                        SELECT gen_random_uuid(), workflow_id, key, 1, 'pending', 1, 0, now(), now() FROM tasks LIMIT 1
                        """)
                }
            }
        }
    }
}
