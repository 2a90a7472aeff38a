import Foundation
import OrchestratorApp
import OrchestratorDomain
import OrchestratorStore
import PostgresClient
import Testing

/// Claims and completions go through group commit (one transaction per batch of concurrent
/// requests). These tests prove that batching changes nothing a caller can see: every lease is
/// completed exactly once, duplicates and stale tokens inside one batch are refused, children
/// become ready once, after all their parents, and the workflow finishes once.
@Suite("Batched claims and completions")
struct BatchedDispatchTests {
    @Test("concurrent completions, each sent twice and once more with a stale token: exactly once, children ready once, after every parent")
    func exactlyOnceUnderConcurrency() async throws {
        try await TestDatabase.withStore(maxConnections: 6) { store, pool in
            let width = 300
            // Two workflows share the batches: each has `width` independent tasks and a sink after all of them.
            var workflowIDs: [String] = []
            for _ in 0..<2 {
                let tasks = (0..<width).map { Fixtures.task(TaskKey("t\($0)")) } + [Fixtures.task("sink")]
                let dag = Dag(tasks: tasks, edges: (0..<width).map { Edge(TaskKey("t\($0)"), "sink") })
                workflowIDs.append(try await store.createWorkflow(Fixtures.workflow(dag: dag)).workflow.workflowID)
            }
            var claimed: [ClaimedTask] = []
            for executor in 0..<4 {
                claimed += try await Fixtures.claim(store, executor: "exec-\(executor)", limit: 2 * width)
            }
            #expect(claimed.count == 2 * width)
            #expect(Set(claimed.map(\.task.taskID)).count == 2 * width)

            // Per task: the report, a duplicate of it, and a report with an older fencing token.
            let before = store.dispatch.batchStatistics.completions
            let outcomes = try await withThrowingTaskGroup(of: (String, String, ReportResult).self) { group in
                for task in claimed {
                    let executor = task.task.leaseOwner!
                    for (kind, token) in [("report", task.lease.fencingToken), ("duplicate", task.lease.fencingToken), ("stale", 0)] {
                        group.addTask {
                            let result = try await store.report(TaskReport(
                                lease: LeaseToken(taskID: task.task.taskID, fencingToken: token), executorID: executor,
                                outcome: .completed(result: Array(kind.utf8)), now: Fixtures.t0 + 5))
                            return (task.task.taskID, kind, result)
                        }
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            let after = store.dispatch.batchStatistics.completions
            #expect(after.requests - before.requests == 3 * 2 * width)
            // Batching happened: far fewer transactions than reports.
            #expect(after.batches - before.batches < after.requests - before.requests)
            #expect(after.largestBatch > 1)

            var accepted: [String: Int] = [:]
            for (taskID, kind, result) in outcomes {
                switch result {
                case .accepted(let state, _):
                    #expect(kind != "stale", "a stale token was accepted for \(taskID)")
                    #expect(state == .succeeded)
                    accepted[taskID, default: 0] += 1
                case .staleLease(let current, let state, let tenant):
                    #expect(tenant == "acme")
                    #expect(current == 1)
                    // The stale one may be looked at before or after the real report committed.
                    #expect(state == .succeeded || (kind == "stale" && state == .leased))
                case .alreadyCompleted:
                    // Only the very completion stored, sent again, is answered so; these differ.
                    Issue.record("a different completion was taken for a resent one")
                case .unknownTask:
                    Issue.record("task \(taskID) unknown")
                case .heldByAnotherStream, .assignedToAnotherStream:
                    Issue.record("task \(taskID) refused as held by another stream (the store never answers so)")
                }
            }
            #expect(accepted.count == 2 * width)
            #expect(accepted.values.allSatisfy { $0 == 1 })

            for workflowID in workflowIDs {
                let states = try await Fixtures.states(store, workflowID)
                #expect(states["sink"] == .ready)
                #expect(states.filter { $0.value == .succeeded }.count == width)
                let events = try await Fixtures.allEvents(store, pool, workflowID: workflowID)
                let succeeded = events.filter { $0.kind == .taskSucceeded }
                #expect(succeeded.count == width)
                #expect(Set(succeeded.compactMap(\.taskKey)).count == width)
                let sinkReady = events.filter { $0.kind == .taskReady && $0.taskKey == "sink" }
                #expect(sinkReady.count == 1)
                #expect((sinkReady.first?.sequence ?? 0) > (succeeded.map(\.sequence).max() ?? .max))
                #expect(!events.contains { $0.kind == .workflowSucceeded })
            }
            let attempts = try await Fixtures.count(pool, "SELECT count(*) FROM task_attempts WHERE outcome = 'succeeded'")
            #expect(attempts == 2 * width)
            let results = try await Fixtures.count(pool, "SELECT count(*) FROM tasks WHERE result = 'report' OR result = 'duplicate'")
            #expect(results == 2 * width)

            // The sinks finish their workflows, once each.
            let sinks = try await Fixtures.claim(store, executor: "exec-0", limit: 10)
            #expect(sinks.count == 2)
            let finals = try await withThrowingTaskGroup(of: ReportResult.self) { group in
                for sink in sinks { group.addTask { try await Fixtures.complete(store, sink, now: Fixtures.t0 + 9) } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(finals.allSatisfy { $0 == .accepted(taskState: .succeeded, workflowState: .succeeded) })
            for workflowID in workflowIDs {
                #expect(try await store.workflow(id: workflowID, tenant: nil)?.state == .succeeded)
                let events = try await Fixtures.allEvents(store, pool, workflowID: workflowID)
                #expect(events.filter { $0.kind == .workflowSucceeded }.count == 1)
                #expect(events.last?.kind == .workflowSucceeded)
            }
        }
    }

    @Test("the last tasks of a workflow completed in concurrent batches finish it exactly once, after all of them")
    func concurrentLastCompletionsFinishOnce() async throws {
        // Batches of at most 3 reports, 4 at a time: the last tasks land in different batches
        // that run concurrently and race on the workflow's lock.
        let configuration = StoreConfiguration(completionBatchLimit: 3, concurrentBatches: 4)
        try await TestDatabase.withStore(maxConnections: 6, configuration: configuration) { store, pool in
            // Independent tasks only: whichever batch commits last must see the others' commits
            // (the probe runs after its workflow lock) and finish the workflow; no other may.
            for round in 0..<5 {
                let width = 40
                let dag = Dag(tasks: (0..<width).map { Fixtures.task(TaskKey("t\($0)")) })
                let workflowID = try await store.createWorkflow(Fixtures.workflow(dag: dag)).workflow.workflowID
                let claimed = try await Fixtures.claim(store, executor: "exec-\(round)", limit: width)
                #expect(claimed.count == width)
                let results = try await withThrowingTaskGroup(of: ReportResult.self) { group in
                    for task in claimed { group.addTask { try await Fixtures.complete(store, task) } }
                    return try await group.reduce(into: []) { $0.append($1) }
                }
                #expect(results.filter { $0 == .accepted(taskState: .succeeded, workflowState: .succeeded) }.count == 1)
                #expect(results.filter { $0 == .accepted(taskState: .succeeded, workflowState: nil) }.count == width - 1)
                #expect(try await store.workflow(id: workflowID, tenant: nil)?.state == .succeeded)
                let events = try await Fixtures.allEvents(store, pool, workflowID: workflowID)
                #expect(events.filter { $0.kind == .workflowSucceeded }.count == 1)
                #expect(events.last?.kind == .workflowSucceeded)
                #expect(events.filter { $0.kind == .taskSucceeded }.count == width)
            }
            let batches = store.dispatch.batchStatistics.completions
            #expect(batches.largestBatch <= 3 && batches.batches >= 5 * 40 / 3)
        }
    }

    @Test("inside one batch: a duplicate report and a stale token are refused and change nothing")
    func refusalsInsideOneBatch() async throws {
        try await TestDatabase.withStore(maxConnections: 6) { store, pool in
            let workflowID = try await store.createWorkflow(Fixtures.workflow(dag: Fixtures.diamond)).workflow.workflowID
            let claimedA = try await Fixtures.claim(store, limit: 1)
            #expect(claimedA.first?.task.spec.key == "a")
            let a = try #require(claimedA.first)
            let blockerID = try await store.createWorkflow(Fixtures.workflow(dag: Fixtures.independent(1))).workflow.workflowID
            let blocker = try await Fixtures.claim(store, executor: "blocker", limit: 1)
            #expect(blocker.first?.task.workflowID == blockerID)

            // Hold the blocker workflow's row: the batch completing the blocker's task waits on it,
            // so the three reports below queue up and are applied together in the next batch.
            let (release, releaser) = AsyncStream<Void>.makeStream()
            let (locked, lockedSignal) = AsyncStream<Void>.makeStream()
            let holder = Task {
                try await pool.withTransaction { transaction in
                    try await transaction.query("SELECT 1 FROM workflows WHERE id = $1 FOR UPDATE", [blockerID])
                    lockedSignal.yield()
                    for await _ in release { break }
                }
            }
            for await _ in locked { break }
            let blocked = Task { try await Fixtures.complete(store, blocker[0]) }
            try await Task.sleep(for: .milliseconds(300))
            let before = store.dispatch.batchStatistics.completions
            let report = Task { try await Fixtures.complete(store, a, result: "first") }
            let duplicate = Task { try await Fixtures.complete(store, a, result: "second") }
            let stale = Task {
                try await store.report(TaskReport(
                    lease: LeaseToken(taskID: a.task.taskID, fencingToken: a.lease.fencingToken + 1), executorID: "exec-1",
                    outcome: .completed(result: Array("stale".utf8)), now: Fixtures.t0))
            }
            let wrongExecutor = Task {
                try await store.report(TaskReport(
                    lease: a.lease, executorID: "someone-else", outcome: .completed(result: Array("other".utf8)), now: Fixtures.t0))
            }
            try await Task.sleep(for: .milliseconds(300))
            releaser.yield()
            try await holder.value
            #expect(try await blocked.value == .accepted(taskState: .succeeded, workflowState: .succeeded))
            let results = [try await report.value, try await duplicate.value]
            #expect(results.filter { $0 == .accepted(taskState: .succeeded, workflowState: nil) }.count == 1)
            #expect(results.filter { $0 == .staleLease(currentToken: 1, state: .succeeded, tenant: "acme") }.count == 1)
            let staleResult = try await stale.value
            let wrongResult = try await wrongExecutor.value
            #expect(staleResult == .staleLease(currentToken: 1, state: .succeeded, tenant: "acme") || staleResult == .staleLease(currentToken: 1, state: .leased, tenant: "acme"))
            #expect(wrongResult == .staleLease(currentToken: 1, state: .succeeded, tenant: "acme") || wrongResult == .staleLease(currentToken: 1, state: .leased, tenant: "acme"))
            let after = store.dispatch.batchStatistics.completions
            #expect(after.batches - before.batches <= 2, "the four reports should have shared a batch")
            #expect(after.largestBatch >= 3)

            // Exactly one completion is recorded, with the accepted report's result.
            let resultText = try await pool.withConnection {
                try await $0.query("SELECT convert_from(result, 'UTF8') AS r FROM tasks WHERE key = 'a' AND workflow_id = $1", [workflowID])
                    .first!.decode(String.self, column: "r")
            }
            #expect(resultText == "first" || resultText == "second")
            let events = try await Fixtures.allEvents(store, pool, workflowID: workflowID)
            #expect(events.filter { $0.kind == .taskSucceeded }.count == 1)
            #expect(events.filter { $0.kind == .taskReady }.compactMap(\.taskKey).sorted() == ["a", "b", "c"])
            let states = try await Fixtures.states(store, workflowID)
            #expect(states == ["a": .succeeded, "b": .ready, "c": .ready, "d": .pending])
        }
    }

    @Test("concurrent claims share statements: no task twice, each lease names its own executor, the most urgent work is shared")
    func batchedClaims() async throws {
        try await TestDatabase.withStore(maxConnections: 6) { store, _ in
            let tasks = (0..<100).map { Fixtures.task(TaskKey("t\($0)"), capabilities: $0 % 2 == 0 ? ["gpu"] : ["cpu"], priority: $0 < 10 ? 5 : 0) }
            _ = try await store.createWorkflow(Fixtures.workflow(dag: Dag(tasks: tasks)))
            let before = store.dispatch.batchStatistics.claims
            let claims = try await withThrowingTaskGroup(of: (String, [ClaimedTask]).self) { group in
                for executor in 0..<20 {
                    group.addTask {
                        let capabilities: Set<String> = executor % 2 == 0 ? ["gpu"] : ["cpu"]
                        return ("exec-\(executor)", try await Fixtures.claim(store, executor: "exec-\(executor)", capabilities: capabilities, limit: 7))
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            let after = store.dispatch.batchStatistics.claims
            #expect(after.requests - before.requests == 20)
            let all = claims.flatMap { $0.1 }
            #expect(all.count == 100)
            #expect(Set(all.map(\.task.taskID)).count == 100)
            for (executor, tasks) in claims {
                #expect(tasks.count <= 7)
                #expect(tasks.allSatisfy { $0.task.leaseOwner == executor && $0.lease.fencingToken == 1 })
                let wanted: Set<String> = Int(executor.dropFirst(5))! % 2 == 0 ? ["gpu"] : ["cpu"]
                #expect(tasks.allSatisfy { Set($0.task.spec.requiredCapabilities) == wanted })
            }
            // The ten urgent tasks went out first, whoever asked.
            let urgent = all.filter { $0.task.priority == 5 }
            #expect(urgent.count == 10)
        }
    }

    @Test("slots interleave the requests of one claim statement round-robin")
    func slotOrder() {
        #expect(PostgresDispatchStore.claimSlots([(index: 0, limit: 3), (index: 1, limit: 1), (index: 2, limit: 2)]) == [0, 1, 2, 0, 2, 0])
        #expect(PostgresDispatchStore.claimSlots([]) == [])
    }

    @Test("the stored completion sent again by its executor is answered already completed; another result is stale")
    func resentCompletion() async throws {
        try await TestDatabase.withStore { store, _ in
            _ = try await store.createWorkflow(Fixtures.workflow(dag: Dag(tasks: [Fixtures.task("a")])))
            let a = try #require(try await Fixtures.claim(store).first)
            #expect(try await Fixtures.complete(store, a, result: "first") == .accepted(taskState: .succeeded, workflowState: .succeeded))
            #expect(try await Fixtures.complete(store, a, result: "first") == .alreadyCompleted)
            #expect(try await Fixtures.complete(store, a, result: "second") == .staleLease(currentToken: 1, state: .succeeded, tenant: "acme"))
            let other = TaskReport(lease: a.lease, executorID: "someone-else", outcome: .completed(result: Array("first".utf8)), now: Fixtures.t0)
            #expect(try await store.report(other) == .staleLease(currentToken: 1, state: .succeeded, tenant: "acme"))
        }
    }
}
