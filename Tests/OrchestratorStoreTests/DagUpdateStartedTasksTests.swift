import OrchestratorApp
import OrchestratorDomain
import PostgresClient
import Testing

@testable import OrchestratorStore

/// A task that started or finished keeps its upstream tasks through UpdateDag: it ran on their
/// results, or was skipped for them. Removing such an edge made the graph deny what a task
/// consumed and left a skipped task "waiting" on an upstream task that was no longer there.
@Suite("UpdateDag and started tasks")
struct DagUpdateStartedTasksTests {
    static let chain = Dag(
        tasks: ["a", "b", "c"].map { Fixtures.task(TaskKey($0)) }, edges: [Edge("a", "b"), Edge("b", "c")])

    static func update(_ store: PostgresStore, _ id: String, version: Int = 1, _ dag: Dag) async throws -> StoredDagVersion {
        try await store.updateDag(
            DagUpdate(workflowID: id, tenant: nil, expectedVersion: version, newDag: dag, ranks: [:], reason: "edit", actor: Fixtures.actor,
                      now: Fixtures.t0 + 1_000))
    }

    @Test func anEdgeIntoALeasedTaskStays() async throws {
        try await TestDatabase.withStore { store, pool in
            let id = try await store.createWorkflow(Fixtures.workflow(dag: Self.chain)).workflow.workflowID
            _ = try await Fixtures.complete(store, try #require(try await Fixtures.claim(store).first))
            _ = try #require(try await Fixtures.claim(store).first)  // b, leased
            let events = try await Fixtures.count(pool, "SELECT count(*) FROM workflow_events")
            var without = Self.chain
            without.edges = [Edge("b", "c")]
            await #expect(throws: StoreError.tasksAlreadyStarted(["b"])) { try await Self.update(store, id, without) }
            #expect(try await store.dagHistory(workflowID: id).count == 1)
            #expect(try await Fixtures.count(pool, "SELECT count(*) FROM edges") == 2)
            #expect(try await Fixtures.count(pool, "SELECT count(*) FROM workflow_events") == events)
        }
    }

    @Test func anEdgeIntoASkippedTaskStaysAndTheRefusalSaysFinished() async throws {
        try await TestDatabase.withStore { store, _ in
            // k (nobody takes it) keeps the workflow running.
            var dag = Self.chain
            dag.tasks.append(Fixtures.task("k", capabilities: ["cap-k"]))
            let id = try await store.createWorkflow(Fixtures.workflow(dag: dag, policy: .continueIndependent)).workflow.workflowID
            _ = try await Fixtures.fail(store, try #require(try await Fixtures.claim(store).first), retryable: false)
            #expect(try await Fixtures.states(store, id) == ["a": .failed, "b": .skipped, "c": .skipped, "k": .ready])
            var without = dag
            without.edges = [Edge("a", "b")]
            await #expect(throws: StoreError.tasksAlreadyStarted(["c"])) { try await Self.update(store, id, without) }
            #expect(StoreError.tasksAlreadyStarted(["c"]).description == "tasks already started or finished cannot change: c")
        }
    }

    @Test func removingAnUnstartedUpstreamTaskOfASkippedOneRecountsItAndKeepsItSkipped() async throws {
        try await TestDatabase.withStore { store, pool in
            // a → c ← x: a fails, so c is skipped while x still waits for an executor.
            let dag = Dag(
                tasks: [Fixtures.task("a", capabilities: ["cap-a"]), Fixtures.task("x", capabilities: ["cap-x"]), Fixtures.task("c")],
                edges: [Edge("a", "c"), Edge("x", "c")])
            let id = try await store.createWorkflow(Fixtures.workflow(dag: dag, policy: .continueIndependent)).workflow.workflowID
            let a = try #require(try await Fixtures.claim(store, capabilities: ["cap-a"]).first)
            _ = try await Fixtures.fail(store, a, retryable: false)
            let skipped = try #require(try await store.tasks(workflowID: id).first { $0.spec.key == "c" })
            #expect(skipped.state == .skipped && skipped.unfinishedUpstream == 2)
            let skippedEvents = try await Fixtures.count(pool, "SELECT count(*) FROM workflow_events WHERE type = 'task_skipped'")

            let stored = try await Self.update(store, id, Dag(tasks: [dag.tasks[0], dag.tasks[2]], edges: [Edge("a", "c")]))
            #expect(stored.version == 2)
            let after = try #require(try await store.tasks(workflowID: id).first { $0.spec.key == "c" })
            #expect(after.state == .skipped && after.unfinishedUpstream == 1)
            #expect(after.finishedAt == skipped.finishedAt)
            #expect(try await Fixtures.count(pool, "SELECT count(*) FROM workflow_events WHERE type = 'task_skipped'") == skippedEvents)
            // Nothing is left to run: the workflow ends with the update.
            #expect(try await store.workflow(id: id, tenant: nil)?.state == .failed)
        }
    }
}
