import Foundation
import OrchestratorApp
import OrchestratorDomain
import OrchestratorStore
import PostgresClient
import Testing

@Suite("PostgresDispatchStore")
struct DispatchStoreTests {
    @Test("claims come most urgent first: priority, then rank, then age; capabilities and tenants filter")
    func claimOrder() async throws {
        try await TestDatabase.withStore { store, _ in
            let dag = Dag(tasks: [
                Fixtures.task("low"), Fixtures.task("high", priority: 5), Fixtures.task("ranked"),
                Fixtures.task("gpu", capabilities: ["gpu"], priority: 9),
            ])
            _ = try await store.createWorkflow(Fixtures.workflow(dag: dag, ranks: ["ranked": 10]))
            _ = try await store.createWorkflow(Fixtures.workflow(tenant: "globex", dag: Dag(tasks: [Fixtures.task("other", priority: 100)])))
            let claimed = try await Fixtures.claim(store, tenants: ["acme"], limit: 10)
            #expect(claimed.map(\.task.spec.key) == ["high", "ranked", "low"])
            #expect(claimed.allSatisfy { $0.task.state == .leased && $0.task.attempt == 1 && $0.lease.fencingToken == 1 })
            #expect(claimed.allSatisfy { $0.leaseExpiresAt == Fixtures.t0 + 30_000 && $0.task.leaseOwner == "exec-1" })
            let gpu = try await Fixtures.claim(store, executor: "exec-2", capabilities: ["gpu", "cpu"], tenants: ["acme"])
            #expect(gpu.map(\.task.spec.key) == ["gpu"])
            #expect(try await Fixtures.claim(store, capabilities: ["gpu"], tenants: ["acme"]).isEmpty)
            #expect(try await Fixtures.claim(store, tenants: nil).map(\.task.spec.key) == ["other"])
        }
    }

    @Test("a task stored with a lease TTL past 2^31 − 1 ms is claimed with the longest one, not an error for every claimer")
    func oversizedLeaseTTLIsClamped() async throws {
        // Such specs were accepted before the API bound them (24 days): the claim then failed with
        // "integer out of range" (tasks.lease_ttl_ms is int4) for every executor it met.
        try await TestDatabase.withStore { store, pool in
            var task = Fixtures.task("long-lease")
            task.heartbeatTimeoutSeconds = 366 * 86_400
            _ = try await store.createWorkflow(Fixtures.workflow(dag: Dag(tasks: [task, Fixtures.task("other")])))
            let claimed = try await Fixtures.claim(store, limit: 10)
            #expect(Set(claimed.map(\.task.spec.key.rawValue)) == ["long-lease", "other"])
            let long = try #require(claimed.first { $0.task.spec.key == "long-lease" })
            #expect(long.leaseExpiresAt == Fixtures.t0 + TaskSpec.maxLeaseTTLMillis)
            let stored = try await pool.withConnection {
                try await $0.query("SELECT lease_ttl_ms FROM tasks WHERE key = 'long-lease'")[0].decode(Int.self, column: "lease_ttl_ms")
            }
            #expect(Int64(stored) == TaskSpec.maxLeaseTTLMillis)
        }
    }

    @Test("aging: a low-priority task that waited long enough overtakes newer urgent work")
    func aging() async throws {
        try await TestDatabase.withStore { store, _ in
            _ = try await store.createWorkflow(Fixtures.workflow(dag: Dag(tasks: [Fixtures.task("old")]), now: Fixtures.t0))
            // Ten aging intervals (60 s each) later, priority 5 is not enough to pass it...
            let later = Fixtures.t0 + 10 * 60_000
            _ = try await store.createWorkflow(Fixtures.workflow(dag: Dag(tasks: [Fixtures.task("new", priority: 5)]), now: later))
            // ...and priority 20 is.
            _ = try await store.createWorkflow(Fixtures.workflow(dag: Dag(tasks: [Fixtures.task("urgent", priority: 20)]), now: later))
            let order = try await Fixtures.claim(store, limit: 3, now: later).map(\.task.spec.key)
            #expect(order == ["urgent", "old", "new"])
        }
    }

    @Test("completion readies children whose counters reach zero and finishes the workflow; inputs and upstream results travel")
    func completionFlow() async throws {
        try await TestDatabase.withStore { store, pool in
            let id = try await store.createWorkflow(Fixtures.workflow(dag: Fixtures.diamond, inputs: ["url": "u"])).workflow.workflowID
            let a = try #require(try await Fixtures.claim(store).first)
            #expect(a.inputs == ["url": "u"] && a.upstreamResults.isEmpty)
            #expect(try await Fixtures.complete(store, a, result: "A") == .accepted(taskState: .succeeded, workflowState: nil))
            let middle = try await Fixtures.claim(store)
            #expect(Set(middle.map(\.task.spec.key)) == ["b", "c"])
            // One claim, two tasks of one workflow: each carries the inputs and its upstream results.
            #expect(middle.allSatisfy { $0.upstreamResults == ["a": Array("A".utf8)] && $0.inputs == ["url": "u"] })
            _ = try await Fixtures.complete(store, middle[0], result: "1")
            #expect(try await Fixtures.claim(store).isEmpty)  // d still waits for one upstream
            _ = try await Fixtures.complete(store, middle[1], result: "2")
            let d = try #require(try await Fixtures.claim(store).first)
            #expect(d.upstreamResults == [middle[0].task.spec.key.rawValue: Array("1".utf8), middle[1].task.spec.key.rawValue: Array("2".utf8)])
            #expect(try await Fixtures.complete(store, d) == .accepted(taskState: .succeeded, workflowState: .succeeded))
            let record = try #require(try await store.workflow(id: id, tenant: nil))
            #expect(record.state == .succeeded && record.counts[.succeeded] == 4 && record.finishedAt == Fixtures.t0)
            let tasks = try await store.tasks(workflowID: id)
            #expect(tasks.first { $0.spec.key == "a" }?.result == Array("A".utf8))
            let kinds = try await Fixtures.allEvents(store, pool, workflowID: id).map(\.kind)
            #expect(kinds.filter { $0 == .taskSucceeded }.count == 4)
            #expect(kinds.filter { $0 == .taskReady }.count == 4)
            #expect(kinds.last == .workflowSucceeded)
        }
    }

    @Test("one claim across workflows: each task gets its own workflow's inputs and its own upstream results, empty ones included")
    func claimCarriesInputsAndUpstreamPerTask() async throws {
        try await TestDatabase.withStore { store, _ in
            let chain = Dag(tasks: [Fixtures.task("up"), Fixtures.task("down")], edges: [Edge("up", "down")])
            _ = try await store.createWorkflow(Fixtures.workflow(dag: chain, inputs: ["n": "1"]))
            _ = try await store.createWorkflow(Fixtures.workflow(dag: chain, inputs: ["n": "2"]))
            _ = try await store.createWorkflow(Fixtures.workflow(dag: Dag(tasks: [Fixtures.task("alone")])))
            let roots = try await Fixtures.claim(store, limit: 10)
            #expect(roots.count == 3 && roots.allSatisfy { $0.upstreamResults.isEmpty })
            #expect(Set(roots.map(\.inputs)) == [["n": "1"], ["n": "2"], [:]])
            for root in roots where root.task.spec.key == "up" {
                // An empty result is a result: the child sees it, keyed, not missing.
                _ = try await Fixtures.complete(store, root, result: root.inputs["n"] == "1" ? "" : "two")
            }
            let children = try await Fixtures.claim(store, limit: 10)
            #expect(children.count == 2)
            for child in children {
                #expect(child.task.spec.key == "down")
                #expect(child.upstreamResults == ["up": child.inputs["n"] == "1" ? [] : Array("two".utf8)])
            }
            #expect(Set(children.map(\.inputs)) == [["n": "1"], ["n": "2"]])
        }
    }

    @Test("a stale fencing token is refused and changes nothing")
    func staleToken() async throws {
        try await TestDatabase.withStore { store, pool in
            let dag = Dag(tasks: [Fixtures.task("a", retry: RetryPolicy(maxAttempts: 3, initialBackoffMillis: 0))])
            let id = try await store.createWorkflow(Fixtures.workflow(dag: dag)).workflow.workflowID
            let first = try #require(try await Fixtures.claim(store, ttl: 1_000).first)
            let expired = try await store.expireLeases(now: Fixtures.t0 + 2_000, limit: 10)
            #expect(expired.map(\.newState) == [.ready])
            let second = try #require(try await Fixtures.claim(store, executor: "exec-2", now: Fixtures.t0 + 2_000).first)
            #expect(second.lease.fencingToken == 2)

            let tasksBefore = try await store.tasks(workflowID: id)
            let eventsBefore = try await Fixtures.count(pool, "SELECT count(*) FROM workflow_events")
            #expect(try await Fixtures.complete(store, first) == .staleLease(currentToken: 2, state: .leased, tenant: "acme"))
            #expect(try await Fixtures.fail(store, first, retryable: false) == .staleLease(currentToken: 2, state: .leased, tenant: "acme"))
            // The right token from the wrong executor is refused too.
            let forged = TaskReport(lease: second.lease, executorID: "exec-1", outcome: .completed(result: []), now: Fixtures.t0)
            #expect(try await store.report(forged) == .staleLease(currentToken: 2, state: .leased, tenant: "acme"))
            #expect(try await store.tasks(workflowID: id) == tasksBefore)
            #expect(try await Fixtures.count(pool, "SELECT count(*) FROM workflow_events") == eventsBefore)
            let unknown = LeaseToken(taskID: UUID().uuidString, fencingToken: 1)
            #expect(try await store.report(TaskReport(lease: unknown, executorID: "x", outcome: .completed(result: []), now: 0)) == .unknownTask)
            #expect(try await store.report(TaskReport(lease: LeaseToken(taskID: "nope", fencingToken: 1), executorID: "x", outcome: .completed(result: []), now: 0)) == .unknownTask)
        }
    }

    @Test("a lease owner is compared byte by byte: a canonically equivalent spelling is another executor")
    func ownerComparedByBytes() async throws {
        try await TestDatabase.withStore { store, pool in
            let dag = Dag(tasks: [Fixtures.task("a")])
            let id = try await store.createWorkflow(Fixtures.workflow(dag: dag)).workflow.workflowID
            // "K" and U+212A KELVIN SIGN are equal to Swift's `==`, not to PostgreSQL.
            let claimed = try #require(try await Fixtures.claim(store, executor: "acme/Kworker/pod").first)
            let tasksBefore = try await store.tasks(workflowID: id)
            let eventsBefore = try await Fixtures.count(pool, "SELECT count(*) FROM workflow_events")
            for outcome: TaskReport.Outcome in [
                .progress(fraction: 0.5, message: "mine now"), .failed(message: "forged", code: "x", retryable: false), .completed(result: []),
            ] {
                let forged = TaskReport(lease: claimed.lease, executorID: "acme/\u{212A}worker/pod", outcome: outcome, now: Fixtures.t0)
                #expect(try await store.report(forged) == .staleLease(currentToken: 1, state: .leased, tenant: "acme"))
            }
            #expect(try await store.tasks(workflowID: id) == tasksBefore)
            #expect(try await Fixtures.count(pool, "SELECT count(*) FROM workflow_events") == eventsBefore)
            #expect(try await Fixtures.complete(store, claimed) == .accepted(taskState: .succeeded, workflowState: .succeeded))
        }
    }

    @Test("a cancellation that waits for a claim's lock ends the attempt that claim started")
    func cancelAfterConcurrentClaim() async throws {
        try await TestDatabase.withStore { store, pool in
            let id = try await store.createWorkflow(Fixtures.workflow(dag: Dag(tasks: [Fixtures.task("a")]))).workflow.workflowID
            // A claim caught mid-transaction, as a claim's own statements leave it: the task leased,
            // its attempt inserted, nothing committed yet.
            let (release, releaser) = AsyncStream<Void>.makeStream()
            let (claimed, claimedSignal) = AsyncStream<Void>.makeStream()
            let claim = Task {
                try await pool.withTransaction { transaction in
                    let rows = try await transaction.query(
                        """
                        UPDATE tasks SET state = 'leased', attempt = attempt + 1, fencing_token = fencing_token + 1,
                               lease_owner = 'exec-1', lease_expires_at = now() + interval '30 seconds'
                         WHERE workflow_id = $1 RETURNING id, attempt, fencing_token
                        """, [id])
                    let row = try #require(rows.first)
                    try await transaction.query(
                        "INSERT INTO task_attempts (task_id, attempt, executor_id, fencing_token, leased_at) VALUES ($1::uuid, $2, 'exec-1', $3, now())",
                        [try row.decode(String.self, column: "id"), try row.decode(Int.self, column: "attempt"),
                         try row.decode(Int64.self, column: "fencing_token")])
                    claimedSignal.yield()
                    for await _ in release { break }
                }
            }
            for await _ in claimed { break }
            let cancel = Task {
                try await store.cancelWorkflow(id: id, tenant: nil, reason: "racing a claim", actor: Fixtures.actor, now: Fixtures.t0)
            }
            // The cancellation is now waiting for the task's lock; the claim commits under it.
            try await Task.sleep(for: .milliseconds(300))
            releaser.yield()
            try await claim.value
            let result = try await cancel.value
            #expect(result.revokedLeases.count == 1)
            #expect(try await Fixtures.count(pool, "SELECT count(*) FROM task_attempts WHERE outcome = 'running'") == 0)
            #expect(try await Fixtures.count(pool, "SELECT count(*) FROM task_attempts WHERE outcome = 'revoked' AND finished_at IS NOT NULL") == 1)
        }
    }

    @Test("a retryable failure waits out its backoff, then succeeds on the next attempt")
    func retryWithBackoff() async throws {
        try await TestDatabase.withStore { store, pool in
            let retry = RetryPolicy(maxAttempts: 3, initialBackoffMillis: 1_000, maxBackoffMillis: 10_000, backoffMultiplier: 2)
            let dag = Dag(tasks: [Fixtures.task("a", retry: retry, jitter: 0.5)])
            let id = try await store.createWorkflow(Fixtures.workflow(dag: dag)).workflow.workflowID
            let first = try #require(try await Fixtures.claim(store).first)
            // jitter 0.5 with sample 1.0 → 1,000 ms × 1.5.
            #expect(try await Fixtures.fail(store, first, retryable: true, jitterSample: 1.0) == .accepted(taskState: .ready, workflowState: nil))
            let waiting = try #require(try await store.tasks(workflowID: id).first)
            #expect(waiting.state == .ready && waiting.availableAt == Fixtures.t0 + 1_500)
            #expect(waiting.lastError?.message == "boom" && waiting.lastError?.attempt == 1)
            #expect(try await Fixtures.claim(store, now: Fixtures.t0 + 1_499).isEmpty)
            let second = try #require(try await Fixtures.claim(store, now: Fixtures.t0 + 1_500).first)
            #expect(second.task.attempt == 2 && second.lease.fencingToken == 2)
            #expect(try await Fixtures.complete(store, second, now: Fixtures.t0 + 1_600) == .accepted(taskState: .succeeded, workflowState: .succeeded))
            #expect(try await Fixtures.count(pool, "SELECT count(*) FROM task_attempts WHERE outcome = 'failed'") == 1)
            #expect(try await Fixtures.count(pool, "SELECT count(*) FROM task_attempts WHERE outcome = 'succeeded'") == 1)
            let kinds = try await Fixtures.allEvents(store, pool, workflowID: id).map(\.kind)
            // The claim that promoted the retry appends its task_ready before its task_leased.
            let retried = try #require(kinds.firstIndex(of: .taskRetryScheduled))
            #expect(Array(kinds[(retried + 1)...]) == [.taskReady, .taskLeased, .taskSucceeded, .workflowSucceeded])
        }
    }

    @Test("fail_fast cancels the rest at once; continue_independent skips downstream and lets other branches finish")
    func failurePolicies() async throws {
        try await TestDatabase.withStore { store, _ in
            // a → b → c, and an independent x.
            let dag = Dag(tasks: ["a", "b", "c", "x"].map { Fixtures.task(TaskKey($0)) }, edges: [Edge("a", "b"), Edge("b", "c")])
            let fast = try await store.createWorkflow(Fixtures.workflow(dag: dag, policy: .failFast)).workflow.workflowID
            let claimed = try await Fixtures.claim(store)
            let a = try #require(claimed.first { $0.task.spec.key == "a" })
            let x = try #require(claimed.first { $0.task.spec.key == "x" })
            #expect(try await Fixtures.fail(store, a, retryable: false) == .accepted(taskState: .failed, workflowState: .failed))
            #expect(try await Fixtures.states(store, fast) == ["a": .failed, "b": .cancelled, "c": .cancelled, "x": .cancelled])
            #expect(try await Fixtures.complete(store, x) == .staleLease(currentToken: 1, state: .cancelled, tenant: "acme"))
            #expect(try await store.workflow(id: fast, tenant: nil)?.state == .failed)

            let independent = try await store.createWorkflow(Fixtures.workflow(dag: dag, policy: .continueIndependent)).workflow.workflowID
            let claimed2 = try await Fixtures.claim(store)
            let a2 = try #require(claimed2.first { $0.task.spec.key == "a" })
            let x2 = try #require(claimed2.first { $0.task.spec.key == "x" })
            #expect(try await Fixtures.fail(store, a2, retryable: false) == .accepted(taskState: .failed, workflowState: nil))
            #expect(try await Fixtures.states(store, independent) == ["a": .failed, "b": .skipped, "c": .skipped, "x": .leased])
            #expect(try await Fixtures.complete(store, x2) == .accepted(taskState: .succeeded, workflowState: .failed))
            #expect(try await store.workflow(id: independent, tenant: nil)?.state == .failed)
        }
    }

    @Test("expired leases are requeued with backoff, and fail once attempts are exhausted")
    func leaseExpiry() async throws {
        try await TestDatabase.withStore { store, pool in
            let retry = RetryPolicy(maxAttempts: 2, initialBackoffMillis: 100, maxBackoffMillis: 100)
            let id = try await store.createWorkflow(Fixtures.workflow(dag: Dag(tasks: [Fixtures.task("a", retry: retry)]))).workflow.workflowID
            let first = try #require(try await Fixtures.claim(store, ttl: 1_000).first)
            #expect(try await store.expireLeases(now: Fixtures.t0 + 999, limit: 10).isEmpty)
            // After a database outage the reaper spares leases whose expiry fell inside it.
            #expect(try await store.expireLeases(now: Fixtures.t0 + 9_000, expiredBefore: Fixtures.t0 + 1_000, limit: 10).isEmpty)
            let expired = try await store.expireLeases(now: Fixtures.t0 + 1_001, limit: 10)
            var requeued = ExpiredLease(lease: first.lease, workflowID: id, executorID: "exec-1", newState: .ready)
            requeued.taskKey = "a"  // for the revocations' messages
            #expect(expired == [requeued])
            #expect(try await store.tasks(workflowID: id).first?.availableAt == Fixtures.t0 + 1_101)
            // The reaper promotes the retry once its backoff has passed, with a task_ready event.
            #expect(try await store.expireLeases(now: Fixtures.t0 + 1_101, limit: 10).isEmpty)
            #expect(try await Fixtures.allEvents(store, pool, workflowID: id).map(\.kind).last == .taskReady)
            let second = try #require(try await Fixtures.claim(store, ttl: 1_000, now: Fixtures.t0 + 1_101).first)
            let exhausted = try await store.expireLeases(now: Fixtures.t0 + 5_000, limit: 10)
            #expect(exhausted.map(\.newState) == [.failed])
            #expect(exhausted.map(\.lease) == [second.lease])
            let task = try #require(try await store.tasks(workflowID: id).first)
            #expect(task.state == .failed && task.lastError?.source == .leaseExpired)
            #expect(try await store.workflow(id: id, tenant: nil)?.state == .failed)
        }
    }

    @Test("heartbeats extend held leases only; released leases requeue at once with a new token")
    func extendAndRelease() async throws {
        try await TestDatabase.withStore { store, pool in
            let retry = RetryPolicy(maxAttempts: 5, initialBackoffMillis: 60_000)
            let id = try await store.createWorkflow(
                Fixtures.workflow(dag: Dag(tasks: [Fixtures.task("a", retry: retry), Fixtures.task("b", retry: retry)]))).workflow.workflowID
            let claimed = try await Fixtures.claim(store, ttl: 1_000)
            let a = try #require(claimed.first { $0.task.spec.key == "a" })
            let b = try #require(claimed.first { $0.task.spec.key == "b" })
            let states = try await store.extendLeases([
                LeaseExtension(lease: a.lease, executorID: "exec-1", until: Fixtures.t0 + 9_000),
                LeaseExtension(lease: LeaseToken(taskID: b.lease.taskID, fencingToken: 7), executorID: "exec-1", until: Fixtures.t0 + 9_000),
                LeaseExtension(lease: b.lease, executorID: "intruder", until: Fixtures.t0 + 9_000),
                LeaseExtension(lease: LeaseToken(taskID: "garbage", fencingToken: 1), executorID: "exec-1", until: 1),
            ])
            #expect(states.map(\.valid) == [true, false, false, false])
            #expect(states[0].expiresAt == Fixtures.t0 + 9_000)
            #expect(try await store.expireLeases(now: Fixtures.t0 + 5_000, limit: 10).map(\.lease) == [b.lease])

            let progress = TaskReport(lease: a.lease, executorID: "exec-1", outcome: .progress(fraction: 0.5, message: "half"), now: Fixtures.t0 + 6_000)
            #expect(try await store.report(progress) == .accepted(taskState: .running, workflowState: nil))
            let released = try await store.releaseLeases([a.lease], executorID: "exec-1", sessionID: "ses_1",
                reason: "stream ended", now: Fixtures.t0 + 7_000)
            #expect(released.map(\.newState) == [.ready])
            let again = try await Fixtures.claim(store, executor: "exec-2", now: Fixtures.t0 + 7_000)
            #expect(again.map(\.task.spec.key) == ["a"])  // b still waits out its backoff
            #expect(again.first?.lease.fencingToken == 2)
            #expect(try await Fixtures.complete(store, a) == .staleLease(currentToken: 2, state: .leased, tenant: "acme"))
            // Releasing a lease one does not hold does nothing.
            #expect(try await store.releaseLeases([a.lease], executorID: "exec-1", sessionID: "ses_1",
                reason: "", now: Fixtures.t0 + 7_000).isEmpty)
            let events = try await Fixtures.allEvents(store, pool, workflowID: id)
            let kinds = events.map(\.kind)
            #expect(kinds.contains(.taskRunning) && kinds.contains(.taskProgress) && kinds.contains(.taskLeaseExpired))
            // The released task went straight back to the queue: its retry_scheduled is followed by
            // task_ready, as when a backoff elapses (a watcher rebuilding state saw it waiting).
            let ofA = events.filter { $0.taskKey == "a" }.map(\.kind)
            let requeued = try #require(ofA.lastIndex(of: .taskRetryScheduled))
            #expect(ofA.indices.contains(requeued + 1) && ofA[requeued + 1] == .taskReady)
        }
    }

    @Test("a lease resumed by another stream is not given back or lapsed by the stream it left; its new holder's can, once expired")
    func resumedLeaseStaysWithItsNewStream() async throws {
        try await TestDatabase.withStore { store, _ in
            let retried = RetryPolicy(maxAttempts: 3)
            _ = try await store.createWorkflow(
                Fixtures.workflow(dag: Dag(tasks: [Fixtures.task("a", retry: retried), Fixtures.task("b", retry: retried)])))
            let claimed = try await Fixtures.claim(store, limit: 2, ttl: 5_000)
                .sorted { $0.task.spec.key.rawValue < $1.task.spec.key.rawValue }
            let (roaming, staying) = (claimed[0], claimed[1])
            let resumed = try await store.resumeLeases(
                [LeaseExtension(lease: roaming.lease, executorID: "exec-1", until: Fixtures.t0 + 9_000)], sessionID: "ses_b",
                now: Fixtures.t0 + 1_000)
            #expect(resumed.map(\.valid) == [true])
            // The stream the executor left (ses_a) ends, then lapses: the resumed lease is ses_b's.
            let released = try await store.releaseLeases(
                [roaming.lease, staying.lease], executorID: "exec-1", sessionID: "ses_a", reason: "stream ended", now: Fixtures.t0 + 2_000)
            #expect(released.map(\.lease) == [staying.lease])
            #expect(try await store.lapseLeases([roaming.lease], executorID: "exec-1", sessionID: "ses_a",
                reason: "", now: Fixtures.t0 + 2_000)
                .isEmpty)
            let completed = try await Fixtures.complete(store, roaming, now: Fixtures.t0 + 2_500)
            #expect(completed == .accepted(taskState: .succeeded, workflowState: nil))
            // The next attempt of a task a stream resumed before belongs to whoever claims it.
            let again = try #require(try await Fixtures.claim(store, executor: "exec-2", now: Fixtures.t0 + 3_000).first)
            #expect(again.lease == LeaseToken(taskID: staying.lease.taskID, fencingToken: 2))
            _ = try await store.resumeLeases(
                [LeaseExtension(lease: again.lease, executorID: "exec-2", until: Fixtures.t0 + 9_000)], sessionID: "ses_c",
                now: Fixtures.t0 + 3_000)
            // A lapse before the database expiry (t0 + 33 s, the claim's TTL; pushed by a unary
            // Heartbeat through another server in production) leaves the lease alone.
            #expect(try await store.lapseLeases([again.lease], executorID: "exec-2", sessionID: "ses_c", reason: "",
                now: Fixtures.t0 + 4_000).isEmpty)
            let lapsed = try await store.lapseLeases([again.lease], executorID: "exec-2", sessionID: "ses_c",
                reason: "", now: Fixtures.t0 + 33_000)
            #expect(lapsed.map(\.lease) == [again.lease])
        }
    }

    @Test("leases returned unsent undo their claim: no attempt spent, same place in the queue; others' leases untouched")
    func returnUnsent() async throws {
        try await TestDatabase.withStore { store, pool in
            let id = try await store.createWorkflow(
                Fixtures.workflow(dag: Dag(tasks: [
                    Fixtures.task("a", retry: RetryPolicy(maxAttempts: 1)),
                    Fixtures.task("b", retry: RetryPolicy(maxAttempts: 5, initialBackoffMillis: 60_000)),
                ])))
                .workflow.workflowID
            let claimed = try await Fixtures.claim(store, ttl: 1_000)
            let a = try #require(claimed.first { $0.task.spec.key == "a" })
            let b = try #require(claimed.first { $0.task.spec.key == "b" })
            // Not the holder, a stale token, a malformed id: nothing changes.
            #expect(try await store.returnUnsentLeases([a.lease], executorID: "intruder", reason: "x", now: Fixtures.t0) == 0)
            #expect(try await store.returnUnsentLeases(
                [LeaseToken(taskID: a.lease.taskID, fencingToken: 9), LeaseToken(taskID: "garbage", fencingToken: 1)],
                executorID: "exec-1", reason: "x", now: Fixtures.t0) == 0)
            #expect(try await store.returnUnsentLeases(
                [a.lease], executorID: "exec-1", reason: "returned unsent: test", now: Fixtures.t0 + 10) == 1)
            let task = try #require(try await store.tasks(workflowID: id).first { $0.spec.key == "a" })
            #expect(task.state == .ready && task.attempt == 0)
            // Its only attempt was not spent: claimed again, it is attempt 1 with token 1 once more,
            // and the reaper's sweep past the old TTL leaves it alone.
            #expect(try await store.expireLeases(now: Fixtures.t0 + 5_000, limit: 10).map(\.lease) == [b.lease])
            let again = try await Fixtures.claim(store, executor: "exec-2", now: Fixtures.t0 + 5_000)
            #expect(again.map(\.task.spec.key) == ["a"])
            #expect(again.first?.lease == a.lease && again.first?.task.attempt == 1)
            // The token is the same, the holder is not: the executor it was never sent to is refused.
            let foreign = TaskReport(lease: a.lease, executorID: "exec-1", outcome: .completed(result: []), now: Fixtures.t0 + 5_001)
            #expect(try await store.report(foreign) != .accepted(taskState: .succeeded, workflowState: nil))
            #expect(try await Fixtures.complete(store, try #require(again.first)) == .accepted(taskState: .succeeded, workflowState: nil))
            let events = try await Fixtures.allEvents(store, pool, workflowID: id).filter { $0.taskKey == "a" }
            #expect(events.map(\.kind) == [.taskReady, .taskLeased, .taskReady, .taskLeased, .taskSucceeded])
            #expect(events[2].message == "returned unsent: test" && events[2].attempt == 0)
        }
    }

    @Test("8 concurrent claimers over 10,000 ready tasks never get the same task twice and miss none")
    func concurrentClaimers() async throws {
        try await TestDatabase.withStore(maxConnections: 9) { store, _ in
            _ = try await store.createWorkflow(Fixtures.workflow(dag: Fixtures.independent(10_000)))
            let perWorker = try await withThrowingTaskGroup(of: [String].self) { group in
                for worker in 0..<8 {
                    group.addTask {
                        var mine: [String] = []
                        while true {
                            let batch = try await Fixtures.claim(store, executor: "w\(worker)", limit: 50)
                            if batch.isEmpty { return mine }
                            mine += batch.map(\.task.taskID)
                        }
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            let all = perWorker.flatMap { $0 }
            #expect(all.count == 10_000)
            #expect(Set(all).count == 10_000)
            #expect(perWorker.filter { !$0.isEmpty }.count > 1)
        }
    }
}
