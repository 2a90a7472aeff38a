import Foundation
import OrchestratorApp
import OrchestratorDomain
import OrchestratorStore
import PostgresClient
import Testing

/// The audit trail: who caused each event (AuditCause) and reading it back (AuditLog, AuditService).
@Suite("Audit trail")
struct AuditTrailTests {
    /// The actor `Fixtures.workflow` submits as (the edge passes the same one explicitly and as the cause).
    static let submitter = AuditCause(actor: Fixtures.actor, traceID: "11111111111111111111111111111111")
    static let executor = AuditCause(actor: Actor(subject: "worker-sa", role: "executor", tenant: "acme"), traceID: "22222222222222222222222222222222")
    static let admin = AuditCause(actor: Actor(subject: "root", role: "admin", tenant: "*"), traceID: "33333333333333333333333333333333")

    /// Runs `body` as the given caller, then returns the events it appended (and only those).
    static func caused<T>(
        _ cause: AuditCause?, _ store: PostgresStore, _ pool: PostgresPool, _ body: () async throws -> T
    ) async throws -> (T, [StoredEvent]) {
        let before = try await Fixtures.allEvents(store, pool).last?.sequence ?? 0
        let value = try await AuditCause.$current.withValue(cause) { try await body() }
        try await Fixtures.settleEvents(pool)
        return (value, try await store.events(EventQuery(afterSequence: before, limit: 10_000)))
    }

    static func expectCaused(_ events: [StoredEvent], by cause: AuditCause?, _ what: String) {
        #expect(!events.isEmpty, "\(what) appended no event")
        for event in events {
            #expect(event.actor == cause?.actor, "\(what): \(event.kind) #\(event.sequence) has actor \(String(describing: event.actor))")
            #expect(
                event.requestTraceID == cause?.traceID,
                "\(what): \(event.kind) #\(event.sequence) has request trace \(String(describing: event.requestTraceID))")
        }
    }

    @Test("every event a call appends carries its actor and trace id; the server's own work carries none")
    func causesRecorded() async throws {
        try await TestDatabase.withStore { store, pool in
            // Submission (workflow_submitted, workflow_planned, task_ready of the roots).
            let (created, submitted) = try await Self.caused(Self.submitter, store, pool) {
                try await store.createWorkflow(Fixtures.workflow(dag: Fixtures.diamond)).workflow.workflowID
            }
            #expect(Set(submitted.map(\.kind)) == [.workflowSubmitted, .workflowPlanned, .taskReady])
            Self.expectCaused(submitted, by: Self.submitter, "submission")

            // Lease grant, progress, completion and the children it readies: the executor's call.
            let (claimed, leased) = try await Self.caused(Self.executor, store, pool) { try await Fixtures.claim(store, limit: 1) }
            #expect(leased.map(\.kind) == [.taskLeased])
            Self.expectCaused(leased, by: Self.executor, "lease grant")
            let a = try #require(claimed.first)
            let (_, progressed) = try await Self.caused(Self.executor, store, pool) {
                try await store.report(TaskReport(lease: a.lease, executorID: "exec-1", outcome: .progress(fraction: 0.5, message: "half"), now: Fixtures.t0))
            }
            #expect(progressed.map(\.kind) == [.taskRunning, .taskProgress])
            Self.expectCaused(progressed, by: Self.executor, "progress")
            let (_, completed) = try await Self.caused(Self.executor, store, pool) { try await Fixtures.complete(store, a) }
            #expect(completed.map(\.kind) == [.taskSucceeded, .taskReady, .taskReady])
            Self.expectCaused(completed, by: Self.executor, "completion")

            // A failure that fails the workflow (fail fast): the task, the cancelled rest, the workflow.
            let (both, _) = try await Self.caused(Self.executor, store, pool) { try await Fixtures.claim(store, limit: 2) }
            let (_, failed) = try await Self.caused(Self.executor, store, pool) { try await Fixtures.fail(store, both[0], retryable: false) }
            #expect(failed.map(\.kind).contains(.taskFailed) && failed.last?.kind == .workflowFailed)
            Self.expectCaused(failed, by: Self.executor, "failure")
            #expect(try await store.workflow(id: created, tenant: nil)?.state == .failed)

            // DAG update and cancellation of another workflow, by an administrator.
            let other = try await store.createWorkflow(Fixtures.workflow(dag: Dag(tasks: [Fixtures.task("x")]))).workflow.workflowID
            let grown = Dag(tasks: [Fixtures.task("x"), Fixtures.task("y")], edges: [Edge("x", "y")])
            let (_, updated) = try await Self.caused(Self.admin, store, pool) {
                try await store.updateDag(DagUpdate(
                    workflowID: other, tenant: nil, expectedVersion: 1, newDag: grown, ranks: [:], reason: "add y", actor: Self.admin.actor,
                    now: Fixtures.t0))
            }
            #expect(updated.map(\.kind).contains(.dagUpdated))
            Self.expectCaused(updated, by: Self.admin, "DAG update")
            let (_, cancelled) = try await Self.caused(Self.admin, store, pool) {
                try await store.cancelWorkflow(id: other, tenant: nil, reason: "audit test", actor: Self.admin.actor, now: Fixtures.t0)
            }
            #expect(cancelled.map(\.kind).filter { $0 == .taskCancelled }.count == 2 && cancelled.last?.kind == .workflowCancelled)
            Self.expectCaused(cancelled, by: Self.admin, "cancellation")
        }
    }

    @Test("a resumed lease is recorded with who resumed it; a lapsed lease with no actor")
    func resumeAndExpiry() async throws {
        try await TestDatabase.withStore { store, pool in
            _ = try await store.createWorkflow(Fixtures.workflow(dag: Fixtures.independent(2)))
            let claimed = try await AuditCause.$current.withValue(Self.executor) { try await Fixtures.claim(store, limit: 2, ttl: 1_000) }
            #expect(claimed.count == 2)
            let (states, resumed) = try await Self.caused(Self.executor, store, pool) {
                try await store.resumeLeases(
                    [LeaseExtension(lease: claimed[0].lease, executorID: "exec-1", until: Fixtures.t0 + 60_000),
                     LeaseExtension(lease: LeaseToken(taskID: claimed[1].lease.taskID, fencingToken: 99), executorID: "exec-1",
                                    until: Fixtures.t0 + 60_000)],
                    sessionID: "ses_1", now: Fixtures.t0 + 10)
            }
            #expect(states.map(\.valid) == [true, false])
            #expect(resumed.map(\.kind) == [.taskLeaseResumed])
            #expect(resumed.first?.taskID == claimed[0].lease.taskID)
            Self.expectCaused(resumed, by: Self.executor, "resume")

            // The reaper runs outside any call: what it appends has no actor.
            let (expired, lapsed) = try await Self.caused(nil, store, pool) { try await store.expireLeases(now: Fixtures.t0 + 5_000, limit: 10) }
            #expect(expired.map(\.lease) == [claimed[1].lease])
            #expect(lapsed.map(\.kind).contains(.taskLeaseExpired))
            Self.expectCaused(lapsed, by: nil, "lease expiry")
        }
    }

    @Test("the audit log filters by workflow, actor, type, time window and tenant, oldest first")
    func filters() async throws {
        try await TestDatabase.withStore { store, pool in
            let early = try await AuditCause.$current.withValue(Self.submitter) {
                try await store.createWorkflow(Fixtures.workflow(dag: Dag(tasks: [Fixtures.task("a")]), now: Fixtures.t0)).workflow.workflowID
            }
            let late = try await AuditCause.$current.withValue(Self.admin) {
                var submission = Fixtures.workflow(dag: Dag(tasks: [Fixtures.task("a")]), now: Fixtures.t0 + 60_000)
                submission.actor = Self.admin.actor
                return try await store.createWorkflow(submission).workflow.workflowID
            }
            let globex = try await AuditCause.$current.withValue(Self.submitter) {
                try await store.createWorkflow(Fixtures.workflow(tenant: "globex", dag: Dag(tasks: [Fixtures.task("a")]), now: Fixtures.t0))
                    .workflow.workflowID
            }
            try await Fixtures.settleEvents(pool)
            let all = try await store.auditEvents(AuditQuery(tenant: nil, limit: 1000))
            #expect(all.count == 9)
            #expect(all.map(\.sequence) == all.map(\.sequence).sorted())

            let acme = try await store.auditEvents(AuditQuery(tenant: "acme", limit: 1000))
            #expect(Set(acme.map(\.workflowID)) == [early, late])
            #expect(try await store.auditEvents(AuditQuery(tenant: nil, workflowID: globex, limit: 1000)).allSatisfy { $0.workflowID == globex })
            #expect(try await store.auditEvents(AuditQuery(tenant: "acme", workflowID: globex, limit: 1000)).isEmpty)

            let byRoot = try await store.auditEvents(AuditQuery(tenant: nil, actorSubject: "root", limit: 1000))
            #expect(byRoot.count == 3 && byRoot.allSatisfy { $0.workflowID == late && $0.actor?.subject == "root" })
            #expect(try await store.auditEvents(AuditQuery(tenant: nil, actorSubject: "nobody", limit: 1000)).isEmpty)
            // A subject that looks like SQL is a value like any other.
            #expect(try await store.auditEvents(AuditQuery(tenant: nil, actorSubject: "' OR '1'='1", limit: 1000)).isEmpty)

            let submittedOnly = try await store.auditEvents(AuditQuery(tenant: nil, kinds: [.workflowSubmitted], limit: 1000))
            #expect(submittedOnly.map(\.workflowID) == [early, late, globex])
            let twoKinds = try await store.auditEvents(AuditQuery(tenant: nil, kinds: [.workflowSubmitted, .taskReady], limit: 1000))
            #expect(twoKinds.count == 6)

            let window = try await store.auditEvents(AuditQuery(tenant: nil, since: Fixtures.t0 + 1, until: Fixtures.t0 + 60_001, limit: 1000))
            #expect(window.count == 3 && window.allSatisfy { $0.workflowID == late })
            let before = try await store.auditEvents(AuditQuery(tenant: nil, until: Fixtures.t0 + 60_000, limit: 1000))
            #expect(Set(before.map(\.workflowID)) == [early, globex])

            let afterFirst = try await store.auditEvents(AuditQuery(tenant: nil, afterSequence: all[0].sequence, limit: 2))
            #expect(afterFirst == Array(all[1...2]))
        }
    }

    @Test("AuditService pages without gaps or repeats and refuses foreign page tokens")
    func paging() async throws {
        try await TestDatabase.withStore { store, pool in
            for _ in 0..<5 { _ = try await store.createWorkflow(Fixtures.workflow(dag: Fixtures.independent(3))) }
            try await Fixtures.settleEvents(pool)
            let all = try await store.auditEvents(AuditQuery(tenant: "acme", limit: 1000))
            #expect(all.count == 25)
            let service = AuditService(log: store)
            var seen: [StoredEvent] = []
            var token: String?
            var pages = 0
            repeat {
                let page = try await service.page(AuditQuery(tenant: "acme", limit: 7), pageToken: token)
                #expect(page.events.count <= 7)
                seen += page.events
                token = page.nextPageToken
                pages += 1
            } while token != nil && pages < 100
            #expect(pages == 4)
            #expect(seen == all)

            for bad in ["", "42", "ev1.", "ev1.-5", "ev1.abc", "'; DROP TABLE workflow_events; --"] {
                await #expect(throws: AppError.self, "token \(bad)") { try await service.page(AuditQuery(tenant: nil, limit: 7), pageToken: bad) }
            }
            await #expect(throws: AppError.self) { try await service.page(AuditQuery(tenant: nil, limit: 0), pageToken: nil) }
            await #expect(throws: AppError.self) { try await service.page(AuditQuery(tenant: nil, since: 10, until: 5, limit: 5), pageToken: nil) }
        }
    }
}
