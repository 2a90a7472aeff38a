import Foundation
import OrchestratorApp
import OrchestratorDomain
import OrchestratorStore
import Testing

/// A DAG update racing a completion or a claim of the same workflow. Found by black-box testing
/// (UpdateDag and ReportStatus 0-30 ms apart): a task added below a task completing at that moment
/// stayed pending forever; a removed edge was decremented by the completion too (a check
/// violation: the report failed, its task stayed leased); tasks leased a moment before were
/// deleted under their executor. Each test races the two calls many times with a varying offset
/// and checks every outcome, since any single interleaving may not occur in a given run.
@Suite("DAG updates racing dispatch", .serialized)
struct DagUpdateRaceTests {
    static let rounds = 40

    /// Runs `first` and `second` concurrently, `second` starting 0-3 ms later (or earlier).
    func race<A: Sendable, B: Sendable>(
        _ first: @escaping @Sendable () async throws -> A, _ second: @escaping @Sendable () async throws -> B
    ) async -> (Result<A, any Error>, Result<B, any Error>) {
        let offset = Int.random(in: -3000...3000)
        async let a: Result<A, any Error> = {
            if offset < 0 { try? await Task.sleep(for: .microseconds(-offset)) }
            do { return .success(try await first()) } catch { return .failure(error) }
        }()
        async let b: Result<B, any Error> = {
            if offset > 0 { try? await Task.sleep(for: .microseconds(offset)) }
            do { return .success(try await second()) } catch { return .failure(error) }
        }()
        return await (a, b)
    }

    func update(_ id: String, to dag: Dag) -> DagUpdate {
        DagUpdate(workflowID: id, tenant: nil, expectedVersion: 1, newDag: dag, ranks: [:], reason: "race", actor: Fixtures.actor, now: Fixtures.t0)
    }

    @Test("a task added below one completing at that moment becomes ready, or the update finds the workflow done")
    func addBelowCompleting() async throws {
        try await TestDatabase.withStore { store, _ in
            for round in 0..<Self.rounds {
                let only = ["round\(round)"]  // claims take this round's tasks only
                let id = try await store.createWorkflow(Fixtures.workflow(dag: Dag(tasks: [Fixtures.task("a", capabilities: only)])))
                    .workflow.workflowID
                let a = try #require(try await Fixtures.claim(store, capabilities: Set(only)).first)
                let grown = Dag(tasks: [Fixtures.task("a", capabilities: only), Fixtures.task("d", capabilities: only)], edges: [Edge("a", "d")])
                let (updated, completed) = await race({ try await store.updateDag(update(id, to: grown)) }, { try await Fixtures.complete(store, a) })
                #expect(try completed.get() != .unknownTask, "round \(round)")
                let states = try await Fixtures.states(store, id)
                switch updated {
                case .success:
                    #expect(states == ["a": .succeeded, "d": .ready], "round \(round)")
                    let d = try await store.tasks(workflowID: id).first { $0.spec.key == "d" }
                    #expect(d?.unfinishedUpstream == 0, "round \(round)")
                case .failure(let error):
                    #expect(error as? StoreError == .workflowFinished(id, .succeeded), "round \(round): \(error)")
                    #expect(states == ["a": .succeeded], "round \(round)")
                }
            }
        }
    }

    @Test("an edge removed while its upstream task completes leaves the downstream task ready once, and the completion stored")
    func removeEdgeOfCompleting() async throws {
        try await TestDatabase.withStore { store, _ in
            for round in 0..<Self.rounds {
                let only = ["round\(round)"]
                let chain = Dag(tasks: [Fixtures.task("a", capabilities: only), Fixtures.task("b", capabilities: only)], edges: [Edge("a", "b")])
                let id = try await store.createWorkflow(Fixtures.workflow(dag: chain)).workflow.workflowID
                let a = try #require(try await Fixtures.claim(store, capabilities: Set(only)).first)
                let unlinked = Dag(tasks: [Fixtures.task("a", capabilities: only), Fixtures.task("b", capabilities: only)])
                let (updated, completed) = await race({ try await store.updateDag(update(id, to: unlinked)) }, { try await Fixtures.complete(store, a) })
                #expect((try? updated.get()) != nil, "round \(round): \(updated)")
                #expect((try? completed.get()) == .accepted(taskState: .succeeded, workflowState: nil), "round \(round): \(completed)")
                #expect(try await Fixtures.states(store, id) == ["a": .succeeded, "b": .ready], "round \(round)")
                let b = try await store.tasks(workflowID: id).first { $0.spec.key == "b" }
                #expect(b?.unfinishedUpstream == 0, "round \(round)")
            }
        }
    }

    @Test("tasks leased while an update removes them are never deleted under their executor")
    func removeWhileClaiming() async throws {
        try await TestDatabase.withStore { store, _ in
            for round in 0..<Self.rounds {
                let only = ["round\(round)"]
                let id = try await store.createWorkflow(Fixtures.workflow(dag: Fixtures.independent(6, capabilities: only))).workflow.workflowID
                let kept = Dag(tasks: ["t1", "t3", "t5"].map { Fixtures.task(TaskKey($0), capabilities: only) })
                let (updated, claimed) = await race(
                    { try await store.updateDag(update(id, to: kept)) }, { try await Fixtures.claim(store, capabilities: Set(only), limit: 6) })
                let leased = Set(try claimed.get().map(\.task.spec.key))
                let present = Set(try await Fixtures.states(store, id).keys.map { TaskKey($0) })
                #expect(leased.isSubset(of: present), "round \(round): leased \(leased.sorted()), left \(present.sorted())")
                switch updated {
                case .success: #expect(present == ["t1", "t3", "t5"], "round \(round)")
                case .failure(let error):
                    guard case .tasksAlreadyStarted = error as? StoreError else {
                        Issue.record("round \(round): \(error)")
                        continue
                    }
                    #expect(present.count == 6, "round \(round)")
                }
            }
        }
    }
}
