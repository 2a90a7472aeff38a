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
            for generic in [false, true] {
                let rowsRead = try await claimRowsRead(pool, capabilities: capabilities, slots: 8, genericPlan: generic)
                #expect(rowsRead < 60, "generic plan: \(generic): the claim read \(rowsRead) task rows")
            }
            let claimed = try await Fixtures.claim(store, capabilities: Set(capabilities), limit: 8)
            #expect(claimed.map(\.task.spec.priority) == Array(repeating: 6, count: 8))
        }
    }

    @Test("a tenant-scoped claim walks only its tenants' part of the queue, not another tenant's backlog")
    func otherTenantsBacklogIsNotWalked() async throws {
        try await TestDatabase.withStore { store, pool in
            // 5,000 of globex's tasks ahead of acme's, needing the same capability.
            let backlog = Dag(tasks: (0..<5_000).map { Fixtures.task(TaskKey("g\($0)"), capabilities: ["cpu"], priority: 50) })
            _ = try await store.createWorkflow(Fixtures.workflow(tenant: "globex", dag: backlog))
            _ = try await store.createWorkflow(Fixtures.workflow(tenant: "acme", dag: Fixtures.independent(20, capabilities: ["cpu"])))
            for analyzed in [false, true] {
                if analyzed { try await pool.withConnection { try await $0.query("ANALYZE tasks") } }
                for generic in [false, true] {
                    let rowsRead = try await claimRowsRead(pool, capabilities: ["cpu"], tenants: ["acme"], slots: 8, genericPlan: generic)
                    #expect(rowsRead < 100, "analyzed: \(analyzed), generic plan: \(generic): the claim read \(rowsRead) task rows")
                }
            }
            let acme = try await Fixtures.claim(store, capabilities: ["cpu"], tenants: ["acme"], limit: 30)
            #expect(acme.count == 20 && acme.allSatisfy { $0.task.spec.key.rawValue.hasPrefix("t") })
            let both = try await Fixtures.claim(store, capabilities: ["cpu"], tenants: ["acme", "globex"], limit: 5)
            #expect(both.count == 5 && both.allSatisfy { $0.task.spec.key.rawValue.hasPrefix("g") })
        }
    }

    @Test("tasks whose tenant is not on their row (written by a 0.3.0 server) are matched through their workflow")
    func rowsWithoutTenantAreCheckedAgainstTheirWorkflow() async throws {
        try await TestDatabase.withStore { store, pool in
            let dag = Dag(tasks: [Fixtures.task("a1", priority: 2), Fixtures.task("a2")])
            _ = try await store.createWorkflow(Fixtures.workflow(tenant: "acme", dag: dag))
            _ = try await store.createWorkflow(Fixtures.workflow(tenant: "globex", dag: Dag(tasks: [Fixtures.task("g1", priority: 9)])))
            _ = try await store.createWorkflow(Fixtures.workflow(tenant: "acme", dag: Dag(tasks: [Fixtures.task("a3", priority: 1)])))
            // As a 0.3.0 server inserts them: the column's default.
            try await pool.withConnection { try await $0.query("UPDATE tasks SET tenant = '' WHERE key IN ('a1', 'g1')") }
            let acme = try await Fixtures.claim(store, tenants: ["acme"], limit: 10)
            #expect(acme.map(\.task.spec.key) == ["a1", "a3", "a2"])
            // A claim naming the empty tenant walks the '' rows once, not once per mention.
            let globex = try await Fixtures.claim(store, tenants: ["globex", ""], limit: 10)
            #expect(globex.map(\.task.spec.key) == ["g1"])
        }
    }

    @Test("migration 0014 copies each unfinished task's tenant from its workflow; finished ones keep ''")
    func migrationBackfillsTenants() async throws {
        let before = Array(OrchestratorMigrations.all.prefix { $0.version < 14 })
        try await TestDatabase.withPool(migrations: before) { pool, _ in
            try await pool.withConnection { session in
                try await session.simpleQuery(
                    """
                    INSERT INTO workflows (id, tenant, state, trace_id, created_at, updated_at)
                    VALUES ('wf_a', 'acme', 'running', 't', now(), now()), ('wf_g', 'globex', 'succeeded', 't', now(), now());
                    INSERT INTO tasks (id, workflow_id, key, dag_version, state, max_attempts, unfinished_upstream, priority, rank,
                                       dispatch_priority, metadata, input, created_at, ready_at, updated_at)
                    VALUES (gen_random_uuid(), 'wf_a', 'ready', 1, 'ready', 1, 0, 0, 0, 0, '{}', '', now(), now(), now()),
                           (gen_random_uuid(), 'wf_a', 'pending', 1, 'pending', 1, 1, 0, 0, 0, '{}', '', now(), NULL, now()),
                           (gen_random_uuid(), 'wf_g', 'done', 1, 'succeeded', 1, 0, 0, 0, 0, '{}', '', now(), NULL, now());
                    """)
            }
            _ = try await Migrator(migrations: OrchestratorMigrations.all).migrate(using: pool)
            let rows = try await pool.withConnection { try await $0.query("SELECT key, tenant FROM tasks ORDER BY key") }
            let tenants = try Dictionary(uniqueKeysWithValues: rows.map {
                (try $0.decode(String.self, column: "key"), try $0.decode(String.self, column: "tenant"))
            })
            #expect(tenants == ["done": "", "pending": "acme", "ready": "acme"])
        }
    }

    /// Rows of `tasks` the claim statement's scans produced or filtered out, from `EXPLAIN
    /// ANALYZE` of the statement itself (rolled back, so nothing is claimed).
    private func claimRowsRead(
        _ pool: PostgresPool, capabilities: [String], tenants: [String]? = nil, slots: Int, genericPlan: Bool = false
    ) async throws -> Int {
        let scans = try await claimScansOfTasks(pool, capabilities: capabilities, tenants: tenants, slots: slots, genericPlan: genericPlan)
        // Whatever the statistics, a capability set is an index condition of the walk that reads
        // it, never a filter over another walk of the queue.
        for scan in scans {
            let filter = scan["Filter"] as? String ?? ""
            #expect(
                !filter.contains("queued") && !filter.contains("tenant_queued"),
                "a walk filtered by capability set or tenant: \(scan["Index Name"] ?? "?") \(filter)")
        }
        return scans.reduce(0) { total, scan in
            let loops = scan["Actual Loops"] as? Int ?? 1
            return total + ((scan["Actual Rows"] as? Int ?? 0) + (scan["Rows Removed by Filter"] as? Int ?? 0)) * loops
        }
    }

    /// The plan nodes scanning `tasks` in `EXPLAIN ANALYZE` of the claim statement.
    private func claimScansOfTasks(
        _ pool: PostgresPool, capabilities: [String], tenants: [String]?, slots: Int, genericPlan: Bool
    ) async throws -> [[String: Any]] {
        // The store's claims use generic plans (claimSettings); a plan for the values given, too,
        // as a session could still make one (a server of another version, a changed setting).
        let planning = [PostgresSetting("plan_cache_mode", genericPlan ? "force_generic_plan" : "force_custom_plan")]
        let plan = try await pool.withTransaction(settings: DispatchSQL.claimSettings + planning) { session -> String in
            // A prepared statement, as the store runs it: EXPLAIN of the statement text with
            // parameters would plan for their values whatever plan_cache_mode says.
            let name = "claim_probe_\(UInt32.random(in: 0...UInt32.max))"
            try await session.simpleQuery(
                "PREPARE \(name) (timestamptz, text[], text[], text[], int8, int4[], int8, text[], text[]) AS " + DispatchSQL.claim)
            // EXECUTE's arguments as literals (a utility statement takes no bound parameters);
            // the test's own words, nothing to escape.
            func array(_ words: [String]) -> String { "ARRAY[" + words.map { "'\($0)'" }.joined(separator: ",") + "]::text[]" }
            let arguments = [
                "to_timestamp(\(Fixtures.t0 / 1000))", "array_fill('exec-1'::text, ARRAY[\(slots)])", array(capabilities),
                tenants.map(array) ?? "NULL::text[]", "30000", "array_fill(0, ARRAY[\(slots)])", "\(slots)",
                "array_fill(NULL::text, ARRAY[\(slots)])", "array_fill(NULL::text, ARRAY[\(slots)])",
            ]
            let rows = try await session.query("EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE \(name) (\(arguments.joined(separator: ", ")))")
            let text = try rows[0].decode(String.self, at: 0)
            try await session.query("ROLLBACK AND CHAIN")
            try await session.simpleQuery("DEALLOCATE \(name)")
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
