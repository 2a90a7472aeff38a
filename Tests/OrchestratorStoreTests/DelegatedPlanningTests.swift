import Foundation
import OrchestratorApp
import OrchestratorDomain
import OrchestratorStore
import PostgresClient
import Testing

/// Delegated planning against a real PostgreSQL: a PLANNING workflow's planning task completes
/// through `DispatchService.report`, and `PlanAdoptionService` adopts (or rejects) its answer.
/// The proposed graphs come from a test decoder keyed by the result text; the protobuf decoding
/// is the edge's (checked end to end, see docs/EXECUTORS.md "Planning executors").
@Suite("Delegated planning")
struct DelegatedPlanningTests {
    struct FixedClock: WallClock {
        let value: UnixMillis
        func now() -> UnixMillis { value }
    }

    /// "fetch → summarise", valid.
    static let good = ProposedGraph(
        dag: Dag(tasks: [Fixtures.task("fetch"), Fixtures.task("summarise")], edges: [Edge("fetch", "summarise")]),
        payloads: ["fetch": Array("url".utf8)])
    /// A reference the decoder left out, a cycle, and a task that replaces the planning task.
    static let bad = ProposedGraph(
        dag: Dag(tasks: [Fixtures.task("x"), Fixtures.task("y"), Fixtures.task("plan")], edges: [Edge("x", "y"), Edge("y", "x")]),
        problems: ["task `x` depends on unknown task `nowhere`"])

    static let decoder: ProposedGraphDecoder = { bytes throws(ProposalDecodingError) in
        switch String(decoding: bytes, as: UTF8.self) {
        case "good": return good
        case "bad": return bad
        default: throw ProposalDecodingError(problems: ["not a graph"])
        }
    }

    static func planningWorkflow(policy: FailurePolicy = .failFast) throws -> NewWorkflow {
        let plan = try DelegatedPlanner().plan(
            Query(text: "summarise the page"), context: PlanningContext(limits: .default))
        var workflow = Fixtures.workflow(dag: plan.dag, policy: policy)
        workflow.planning = PlanningRecord(planner: DelegatedPlanner.defaultName, durationMicros: 1, rationale: "delegated")
        workflow.awaitingPlan = true
        return workflow
    }

    static func services(_ store: PostgresStore, now: UnixMillis = Fixtures.t0) -> (DispatchService, PlanAdoptionService) {
        let adoption = PlanAdoptionService(
            planning: store, workflows: store, decode: decoder, clock: FixedClock(value: now), strandedAfterMillis: 1000)
        let dispatch = DispatchService(store: store, signals: ChangeSignals(), clock: FixedClock(value: now), planAdoption: adoption)
        return (dispatch, adoption)
    }

    @Test("the planning task's answer becomes DAG version 2 downstream of `plan`; the workflow goes PLANNING → RUNNING → SUCCEEDED")
    func adoption() async throws {
        try await TestDatabase.withStore { store, pool in
            let created = try await store.createWorkflow(try Self.planningWorkflow())
            let id = created.workflow.workflowID
            #expect(created.workflow.state == .planning)
            let (dispatch, _) = Self.services(store)
            #expect(try await Fixtures.claim(store).isEmpty)  // the planning task needs `planner`
            let plan = try #require(try await Fixtures.claim(store, capabilities: ["planner"]).first)
            #expect(plan.task.spec.key == "plan")

            let result = try await dispatch.report(plan.lease, executorID: "exec-1", outcome: .completed(result: Array("good".utf8)), tenants: nil)
            #expect(result == .accepted(taskState: .succeeded, workflowState: nil))
            let record = try #require(try await store.workflow(id: id, tenant: nil))
            #expect(record.state == .running && record.currentDagVersion == 2)
            let version = try #require(try await store.dagVersion(workflowID: id, version: 2))
            #expect(Set(version.dag.tasks.map(\.key)) == ["plan", "fetch", "summarise"])
            #expect(Set(version.dag.edges) == [Edge("plan", "fetch"), Edge("fetch", "summarise")])
            #expect(try await Fixtures.states(store, id) == ["plan": .succeeded, "fetch": .ready, "summarise": .pending])

            let fetch = try #require(try await Fixtures.claim(store).first)
            #expect(fetch.task.spec.key == "fetch" && fetch.task.payload == Array("url".utf8))
            #expect(fetch.upstreamResults == ["plan": Array("good".utf8)])
            _ = try await Fixtures.complete(store, fetch)
            let summarise = try #require(try await Fixtures.claim(store).first)
            #expect(try await Fixtures.complete(store, summarise) == .accepted(taskState: .succeeded, workflowState: .succeeded))

            let events = try await Fixtures.allEvents(store, pool, workflowID: id)
            let states = events.compactMap(\.workflowState)
            #expect(states.first == .planning)
            #expect(states.last == .succeeded)
            // The only workflow-level events between the planning task's success and the end are
            // the adoption (RUNNING, version 2) and the final success: never SUCCEEDED early.
            let planned = try #require(events.last { $0.kind == .workflowPlanned })
            #expect(planned.workflowState == .running && planned.dagVersion == 2)
            #expect(events.filter { $0.kind == .workflowSucceeded }.count == 1)
        }
    }

    @Test("an invalid answer fails the planning task (not retryable) listing every problem, and the workflow fails")
    func rejection() async throws {
        try await TestDatabase.withStore { store, _ in
            var workflow = try Self.planningWorkflow()
            workflow.dag.tasks[0].retry = RetryPolicy(maxAttempts: 3, initialBackoffMillis: 0)
            let id = try await store.createWorkflow(workflow).workflow.workflowID
            let (dispatch, _) = Self.services(store)
            let plan = try #require(try await Fixtures.claim(store, capabilities: ["planner"]).first)
            let result = try await dispatch.report(plan.lease, executorID: "exec-1", outcome: .completed(result: Array("bad".utf8)), tenants: nil)
            #expect(result == .accepted(taskState: .failed, workflowState: .failed))
            let task = try #require(try await store.tasks(workflowID: id).first)
            let error = try #require(task.lastError)
            #expect(task.state == .failed && !error.retryable && error.code == "invalid_plan")
            #expect(error.message.contains("unknown task `nowhere`"))
            #expect(error.message.contains("`plan` already exists"))
            #expect(error.message.contains("cycle"))
            // Messages only, no domain codes in front ("cycle: cycle: …", "unknown_task: …").
            #expect(!error.message.contains("cycle: cycle") && !error.message.contains("unknown_task:"))
            let record = try #require(try await store.workflow(id: id, tenant: nil))
            #expect(record.state == .failed && record.currentDagVersion == 1)
        }
    }

    @Test("a result that is not a graph is rejected the same way; continue_independent fails the workflow too")
    func undecodable() async throws {
        try await TestDatabase.withStore { store, _ in
            let id = try await store.createWorkflow(try Self.planningWorkflow(policy: .continueIndependent)).workflow.workflowID
            let (dispatch, _) = Self.services(store)
            let plan = try #require(try await Fixtures.claim(store, capabilities: ["planner"]).first)
            let result = try await dispatch.report(plan.lease, executorID: "exec-1", outcome: .completed(result: [0xff, 0x00]), tenants: nil)
            #expect(result == .accepted(taskState: .failed, workflowState: .failed))
            let task = try #require(try await store.tasks(workflowID: id).first)
            #expect(task.lastError?.message.contains("not a graph") == true)
        }
    }

    @Test("the store never finishes a PLANNING workflow whose planning task succeeded; the reaper's sweep adopts it later")
    func strandedAdoption() async throws {
        try await TestDatabase.withStore { store, _ in
            let id = try await store.createWorkflow(try Self.planningWorkflow()).workflow.workflowID
            let plan = try #require(try await Fixtures.claim(store, capabilities: ["planner"]).first)
            // The completion is stored without the adoption (as if the server stopped in between).
            #expect(try await Fixtures.complete(store, plan, result: "good") == .accepted(taskState: .succeeded, workflowState: nil))
            #expect(try await store.workflow(id: id, tenant: nil)?.state == .planning)
            #expect(try await store.plansAwaitingAdoption(finishedBefore: Fixtures.t0, limit: 10).isEmpty)  // too recent
            let (_, adoption) = Self.services(store, now: Fixtures.t0 + 5_000)
            #expect(try await adoption.adoptStranded() == 1)
            let record = try #require(try await store.workflow(id: id, tenant: nil))
            #expect(record.state == .running && record.currentDagVersion == 2)
            #expect(try await adoption.adoptStranded() == 0)
            #expect(try await Fixtures.claim(store).map(\.task.spec.key) == ["fetch"])
        }
    }

    @Test("a stranded answer that cannot be adopted fails the workflow with every problem")
    func strandedRejection() async throws {
        try await TestDatabase.withStore { store, _ in
            let id = try await store.createWorkflow(try Self.planningWorkflow()).workflow.workflowID
            let plan = try #require(try await Fixtures.claim(store, capabilities: ["planner"]).first)
            _ = try await Fixtures.complete(store, plan, result: "bad")
            let (_, adoption) = Self.services(store, now: Fixtures.t0 + 5_000)
            #expect(try await adoption.adoptStranded() == 1)
            let record = try #require(try await store.workflow(id: id, tenant: nil))
            #expect(record.state == .failed)
            #expect(record.error?.contains("cycle") == true)
        }
    }

    @Test("while PLANNING, UpdateDag is refused (the graph is the planner's to propose) and cancellation still works")
    func planningGuards() async throws {
        try await TestDatabase.withStore { store, _ in
            let id = try await store.createWorkflow(try Self.planningWorkflow()).workflow.workflowID
            let updates = DagUpdateService(workflows: store, signals: ChangeSignals())
            await #expect(throws: AppError.self) {
                _ = try await updates.update(
                    workflowID: id, tenant: nil, expectedVersion: 1, change: DagChange(addTasks: [Fixtures.task("extra")]), reason: "",
                    actor: Fixtures.actor)
            }
            #expect(try await store.workflow(id: id, tenant: nil)?.currentDagVersion == 1)
            let cancelled = try await store.cancelWorkflow(id: id, tenant: nil, reason: "changed my mind", actor: Fixtures.actor, now: Fixtures.t0)
            #expect(cancelled.workflow.state == .cancelled)
            #expect(try await store.plansAwaitingAdoption(finishedBefore: Fixtures.t0 + 60_000, limit: 10).isEmpty)
        }
    }
}
