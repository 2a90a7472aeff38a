import Foundation
import OrchestratorApp
import OrchestratorDomain
import OrchestratorStore
import PostgresClient
import Testing

/// Root tasks stored already leased (`NewWorkflow.directLeases`) must be indistinguishable from
/// tasks created ready and then claimed: same rows, attempt, events, and lease semantics.
@Suite("Direct leases at creation")
struct DirectLeaseTests {
    static let executorCause = AuditCause(
        actor: Actor(subject: "executor-7", role: "executor", tenant: "acme"), traceID: "0af7651916cd43dd8448eb211c80319c")

    @Test("leased roots come back as a claim would return them, with their attempt and task_leased events")
    func leasedRootsMatchAClaim() async throws {
        try await TestDatabase.withStore { store, pool in
            var dag = Fixtures.independent(3)
            dag.tasks[0].timeoutSeconds = 90
            dag.tasks[1].priority = 5
            dag.tasks.append(Fixtures.task("child"))
            dag.edges = [Edge("t0", "child")]
            var new = Fixtures.workflow(dag: dag, ranks: ["t0": 3, "t1": 2], payloads: ["t0": [9, 8]], priority: 2, inputs: ["in": "x"])
            let lease = DirectLease(executorID: "executor-7", leaseTTLMillis: 20_000, cause: Self.executorCause)
            // "child" has an upstream task: never leased at creation.
            new.directLeases = ["t0": lease, "t1": lease, "child": lease]
            let created = try await store.createWorkflow(new)
            #expect(created.created)
            #expect(created.leased.map(\.task.spec.key) == ["t0", "t1"])

            // The same rows a read returns.
            let stored = Dictionary(uniqueKeysWithValues: try await store.tasks(workflowID: new.workflowID).map { ($0.spec.key, $0) })
            for claimed in created.leased {
                #expect(claimed.task == stored[claimed.task.spec.key])
                #expect(claimed.lease == LeaseToken(taskID: claimed.task.taskID, fencingToken: 1))
                #expect(claimed.leaseExpiresAt == Fixtures.t0 + 20_000)
                #expect(claimed.inputs == ["in": "x"] && claimed.upstreamResults.isEmpty)
            }
            #expect(stored["t0"]?.payload == [9, 8] && stored["t0"]?.rank == 3 && stored["t0"]?.priority == 2)
            #expect(stored["t1"]?.priority == 5)
            #expect(stored["t2"]?.state == .ready && stored["child"]?.state == .pending)
            #expect(created.workflow == (try await store.workflow(id: new.workflowID, tenant: nil)))
            #expect(created.workflow.counts[.leased] == 2 && created.workflow.counts[.ready] == 1 && created.workflow.counts[.pending] == 1)

            // Attempt 1 open for the executor; the start_to_close deadline runs from creation.
            let t0ID = try #require(stored["t0"]?.taskID)
            #expect(try await Fixtures.count(
                pool, "SELECT count(*) FROM task_attempts WHERE task_id = $1::uuid AND attempt = 1 AND executor_id = 'executor-7' AND fencing_token = 1 AND finished_at IS NULL",
                [t0ID]) == 1)
            #expect(try await Fixtures.count(
                pool, "SELECT count(*) FROM tasks WHERE id = $1::uuid AND deadline_at = created_at + interval '90 seconds' AND lease_ttl_ms = 20000",
                [t0ID]) == 1)

            // Events: as if created ready and claimed at once.
            let events = try await Fixtures.allEvents(store, pool, workflowID: new.workflowID)
            #expect(events.map(\.kind) == [.workflowSubmitted, .workflowPlanned, .taskReady, .taskReady, .taskReady, .taskLeased, .taskLeased])
            let leasedEvents = events.filter { $0.kind == .taskLeased }
            #expect(leasedEvents.map(\.taskKey) == ["t0", "t1"])
            #expect(leasedEvents.allSatisfy {
                $0.executorID == "executor-7" && $0.attempt == 1 && $0.actor == Self.executorCause.actor
                    && $0.requestTraceID == Self.executorCause.traceID && $0.traceID == new.traceID
            })

            // The lease works like a claimed one: the completion is accepted, a stale token is not,
            // and the other ready task is still there for a claim.
            let first = created.leased[0]
            #expect(try await Fixtures.complete(store, first) == .accepted(taskState: .succeeded, workflowState: nil))
            var stale = created.leased[1]
            stale.lease = LeaseToken(taskID: stale.task.taskID, fencingToken: 2)
            if case .accepted = try await Fixtures.complete(store, stale) { Issue.record("a wrong fencing token was accepted") }
            let claimed = try await Fixtures.claim(store)
            #expect(claimed.map(\.task.spec.key).sorted() == ["child", "t2"])
        }
    }

    @Test("a directly leased task whose executor never reports is requeued when its lease lapses")
    func lapsedDirectLeaseIsRequeued() async throws {
        try await TestDatabase.withStore { store, _ in
            var new = Fixtures.workflow(dag: Dag(tasks: [Fixtures.task("t0", retry: RetryPolicy(maxAttempts: 2, initialBackoffMillis: 0))]))
            new.directLeases = ["t0": DirectLease(executorID: "gone", leaseTTLMillis: 1_000, cause: nil)]
            let created = try await store.createWorkflow(new)
            #expect(created.leased.count == 1)
            let expired = try await store.expireLeases(now: Fixtures.t0 + 1_001, limit: 10)
            #expect(expired.map(\.lease) == [created.leased[0].lease] && expired.first?.newState == .ready)
            // Requeued for another attempt (a retry waiting out its backoff reads as ready).
            let task = try #require(try await store.tasks(workflowID: new.workflowID).first)
            #expect(task.state == .ready && task.attempt == 1 && task.leaseOwner == nil)
        }
    }
}
