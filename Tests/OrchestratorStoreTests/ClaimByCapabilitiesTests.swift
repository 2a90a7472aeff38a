import Foundation
import OrchestratorApp
import OrchestratorDomain
import PostgresClient
import Testing

@testable import OrchestratorStore

/// The claim lists the ready queue's capability sets; when some are not the executor's, it walks
/// only those it can run (migration 0014, `DispatchSQL.claim`).
@Suite("Claims by capability set")
struct ClaimByCapabilitiesTests {
    @Test("one claim merges the capability sets it can run in dispatch order, and takes none of the others")
    func mergesSetsInDispatchOrder() async throws {
        try await TestDatabase.withStore { store, _ in
            let dag = Dag(tasks: [
                Fixtures.task("none-3", priority: 3), Fixtures.task("a-7", capabilities: ["a"], priority: 7),
                Fixtures.task("b-5", capabilities: ["b"], priority: 5), Fixtures.task("ab-6", capabilities: ["b", "a"], priority: 6),
                Fixtures.task("ac-9", capabilities: ["a", "c"], priority: 9), Fixtures.task("a-1", capabilities: ["a"], priority: 1),
                Fixtures.task("ab-4", capabilities: ["a", "b"], priority: 4), Fixtures.task("c-8", capabilities: ["c"], priority: 8),
            ])
            _ = try await store.createWorkflow(Fixtures.workflow(dag: dag))
            // The three most urgent of what {a, b} can run, across four sets.
            let first = try await Fixtures.claim(store, capabilities: ["a", "b"], limit: 3)
            #expect(first.map(\.task.spec.key) == ["a-7", "ab-6", "b-5"])
            let rest = try await Fixtures.claim(store, capabilities: ["a", "b"], limit: 10)
            #expect(rest.map(\.task.spec.key) == ["ab-4", "none-3", "a-1"])
            let other = try await Fixtures.claim(store, capabilities: ["c", "a"], limit: 10)
            #expect(other.map(\.task.spec.key) == ["ac-9", "c-8"])
        }
    }

    @Test("rows locked by a concurrent claim are skipped in every set, not waited for")
    func skipsLockedRowsPerSet() async throws {
        try await TestDatabase.withStore { store, pool in
            let dag = Dag(tasks: [
                Fixtures.task("a-9", capabilities: ["a"], priority: 9), Fixtures.task("a-1", capabilities: ["a"], priority: 1),
                Fixtures.task("none-8", priority: 8), Fixtures.task("none-2", priority: 2),
            ])
            _ = try await store.createWorkflow(Fixtures.workflow(dag: dag))
            // Another transaction holds the most urgent task of each set, as a concurrent claim would.
            try await pool.withTransaction { session in
                try await session.query("SELECT id FROM tasks WHERE key IN ('a-9', 'none-8') FOR NO KEY UPDATE")
                let claimed = try await Fixtures.claim(store, capabilities: ["a"], limit: 10)
                #expect(claimed.map(\.task.spec.key) == ["none-2", "a-1"])
            }
        }
    }

    @Test("a deep queue of tasks nobody here can run is not walked by the claim")
    func unrunnableQueueIsNotWalked() async throws {
        try await TestDatabase.withStore { store, pool in
            // 5,000 ready tasks more urgent than anything else, needing a capability no claimer has.
            let stranded = Dag(tasks: (0..<5_000).map { Fixtures.task(TaskKey("g\($0)"), capabilities: ["gpu"], priority: 50) })
            _ = try await store.createWorkflow(Fixtures.workflow(dag: stranded))
            // And 1,000 `cpu` tasks waiting for an upstream task: in the table's statistics, not in the queue.
            let waiting = Dag(
                tasks: [Fixtures.task("first", capabilities: ["later"])]
                    + (0..<1_000).map { Fixtures.task(TaskKey("w\($0)"), capabilities: ["cpu"]) },
                edges: (0..<1_000).map { Edge("first", TaskKey("w\($0)")) })
            _ = try await store.createWorkflow(Fixtures.workflow(dag: waiting))
            _ = try await store.createWorkflow(Fixtures.workflow(dag: Fixtures.independent(20, capabilities: ["cpu"])))

            // Before 0014 the claim's index scan stepped over all 5,000 `gpu` tasks (rows removed
            // by its filter); now it reads the `cpu` set's 8 rows and probes the sets' boundaries.
            // With the statistics of before the burst (autovacuum has not analyzed it yet) and
            // after, planned for these values and as the generic plan a prepared statement ends with.
            for analyzed in [false, true] {
                if analyzed { try await pool.withConnection { try await $0.query("ANALYZE tasks") } }
                for generic in [false, true] {
                    let rowsRead = try await claimRowsRead(pool, capabilities: ["cpu"], slots: 8, genericPlan: generic)
                    #expect(rowsRead < 100, "analyzed: \(analyzed), generic plan: \(generic): the claim read \(rowsRead) task rows")
                }
            }

            let claimed = try await Fixtures.claim(store, capabilities: ["cpu"], limit: 8)
            #expect(claimed.count == 8 && claimed.allSatisfy { $0.task.spec.requiredCapabilities == ["cpu"] })
            let gpu = try await Fixtures.claim(store, capabilities: ["gpu", "cpu"], limit: 3)
            #expect(gpu.count == 3 && gpu.allSatisfy { $0.task.spec.requiredCapabilities == ["gpu"] })
        }
    }

    @Test("when every queued capability set is runnable, the claim walks the queue once instead of each set")
    func allRunnableQueueIsWalkedOnce() async throws {
        try await TestDatabase.withStore { store, pool in
            let capabilities = (1...20).map { "cap\($0)" }
            let dag = Dag(tasks: (0..<1_000).map {
                Fixtures.task(TaskKey("t\($0)"), capabilities: [capabilities[$0 % 20]], priority: $0 % 7)
            })
            _ = try await store.createWorkflow(Fixtures.workflow(dag: dag))
            try await pool.withConnection { try await $0.query("ANALYZE tasks") }

            // 8 rows and one probe per set (21); walking each set would read 8 rows of each (160 more).
            let rowsRead = try await claimRowsRead(pool, capabilities: capabilities, slots: 8)
            #expect(rowsRead < 60, "the claim read \(rowsRead) task rows")
            let claimed = try await Fixtures.claim(store, capabilities: Set(capabilities), limit: 8)
            #expect(claimed.map(\.task.spec.priority) == Array(repeating: 6, count: 8))
        }
    }

    /// Rows of `tasks` the claim statement's scans produced or filtered out, from `EXPLAIN
    /// ANALYZE` of the statement itself (rolled back, so nothing is claimed).
    private func claimRowsRead(_ pool: PostgresPool, capabilities: [String], slots: Int, genericPlan: Bool = false) async throws -> Int {
        let scans = try await claimScansOfTasks(pool, capabilities: capabilities, slots: slots, genericPlan: genericPlan)
        // Whatever the statistics, a capability set is an index condition of the walk that reads
        // it, never a filter over another walk of the queue.
        for scan in scans {
            let filter = scan["Filter"] as? String ?? ""
            #expect(!filter.contains("queued"), "a walk filtered by capability set: \(scan["Index Name"] ?? "?") \(filter)")
        }
        return scans.reduce(0) { total, scan in
            let loops = scan["Actual Loops"] as? Int ?? 1
            return total + ((scan["Actual Rows"] as? Int ?? 0) + (scan["Rows Removed by Filter"] as? Int ?? 0)) * loops
        }
    }

    /// The plan nodes scanning `tasks` in `EXPLAIN ANALYZE` of the claim statement.
    private func claimScansOfTasks(
        _ pool: PostgresPool, capabilities: [String], slots: Int, genericPlan: Bool
    ) async throws -> [[String: Any]] {
        let planning = genericPlan ? [PostgresLocalSetting("plan_cache_mode", "force_generic_plan")] : []
        let plan = try await pool.withTransaction(settings: DispatchSQL.claimSettings + planning) { session -> String in
            let rows = try await session.query(
                "EXPLAIN (ANALYZE, FORMAT JSON) " + DispatchSQL.claim,
                [
                    Fixtures.t0.sqlTimestamp, Array(repeating: "exec-1", count: slots), capabilities, [String]?.none, Int64(30_000),
                    (0..<slots).map { _ in Int32(0) }, slots, [String?](repeating: nil, count: slots),
                    [String?](repeating: nil, count: slots),
                ])
            let text = try rows[0].decode(String.self, at: 0)
            try await session.query("ROLLBACK AND CHAIN")
            return text
        }
        let root = try #require(try JSONSerialization.jsonObject(with: Data(plan.utf8)) as? [[String: Any]])
        return Self.scansOfTasks(try #require(root.first?["Plan"] as? [String: Any]))
    }

    private static func scansOfTasks(_ node: [String: Any]) -> [[String: Any]] {
        var scans: [[String: Any]] = []
        if node["Relation Name"] as? String == "tasks", (node["Node Type"] as? String)?.hasSuffix("Scan") == true { scans.append(node) }
        for child in node["Plans"] as? [[String: Any]] ?? [] { scans += scansOfTasks(child) }
        return scans
    }
}
