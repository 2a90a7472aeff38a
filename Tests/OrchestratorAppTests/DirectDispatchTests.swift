import OrchestratorDomain
import Synchronization
import Testing

@testable import OrchestratorApp

/// A dispatch store with nothing to claim that records the leases given back to it.
final class EmptyQueueStore: TaskDispatchStore {
    let released = Mutex<[LeaseToken]>([])
    let claims = Mutex(0)

    func claimTasks(_ request: ClaimRequest) async throws -> [ClaimedTask] {
        claims.withLock { $0 += 1 }
        return []
    }
    func report(_ report: TaskReport) async throws -> ReportResult { .accepted(taskState: .succeeded, workflowState: nil) }
    func extendLeases(_ extensions: [LeaseExtension]) async throws -> [LeaseState] { [] }
    func resumeLeases(_ extensions: [LeaseExtension], sessionID: String, now: UnixMillis) async throws -> [LeaseState] { [] }
    func expireLeases(now: UnixMillis, limit: Int) async throws -> [ExpiredLease] { [] }
    func releaseLeases(_ leases: [LeaseToken], executorID: String, sessionID: String?, reason: String, now: UnixMillis)
        async throws -> [ExpiredLease] {
        released.withLock { $0 += leases }
        return []
    }
}

/// `EmptyQueueStore` whose lease resumption waits until the test opens the gate.
final class GatedResumeStore: TaskDispatchStore {
    let queue = EmptyQueueStore()
    let gate = Mutex<CheckedContinuation<Void, Never>?>(nil)
    let waiting = Mutex(false)

    func open() {
        gate.withLock { $0 }?.resume()
    }

    func claimTasks(_ request: ClaimRequest) async throws -> [ClaimedTask] { try await queue.claimTasks(request) }
    func report(_ report: TaskReport) async throws -> ReportResult { try await queue.report(report) }
    func extendLeases(_ extensions: [LeaseExtension]) async throws -> [LeaseState] { [] }
    func resumeLeases(_ extensions: [LeaseExtension], sessionID: String, now: UnixMillis) async throws -> [LeaseState] {
        await withCheckedContinuation { continuation in
            gate.withLock { $0 = continuation }
            waiting.withLock { $0 = true }
        }
        return extensions.map { LeaseState(lease: $0.lease, valid: false, expiresAt: nil) }
    }
    func expireLeases(now: UnixMillis, limit: Int) async throws -> [ExpiredLease] { [] }
    func releaseLeases(_ leases: [LeaseToken], executorID: String, sessionID: String?, reason: String, now: UnixMillis)
        async throws -> [ExpiredLease] { [] }
}

/// One lease stream run in-process: what it was sent, and a way to end it.
final class TestSession: Sendable {
    let sent = Mutex<[SessionOutput]>([])
    let inbound: AsyncStream<SessionInput>
    let input: AsyncStream<SessionInput>.Continuation
    let task = Mutex<Task<Void, Never>?>(nil)

    init(_ dispatch: DispatchService, _ executor: ExecutorIdentity, resume: [LeaseToken] = []) {
        (inbound, input) = AsyncStream<SessionInput>.makeStream()
        let inbound = self.inbound
        let running = Task { [self] in
            _ = try? await dispatch.runSession(executor: executor, resume: resume, inbound: inbound) { output in
                self.record(output)
            }
        }
        task.withLock { $0 = running }
    }

    private func record(_ output: SessionOutput) {
        sent.withLock { $0.append(output) }
    }

    var assignments: [ClaimedTask] {
        sent.withLock { $0.compactMap { if case .assignment(let task) = $0 { task } else { nil } } }
    }

    var welcomed: Bool { sent.withLock { $0.contains { if case .welcome = $0 { true } else { false } } } }

    func end() async {
        input.finish()
        await task.withLock { $0 }?.value
    }
}

func eventually(_ condition: () -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + .seconds(10)
    while ContinuousClock.now < deadline {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(5))
    }
    return condition()
}

/// What the store would return for tasks stored leased to the reserved executors.
func leased(_ reservation: DirectReservation, workflowID: String = "wf_1") -> [ClaimedTask] {
    reservation.leases.sorted { $0.key < $1.key }.map { key, lease in
        let task = StoredTask(
            taskID: "\(workflowID)-\(key.rawValue)", workflowID: workflowID, tenant: "acme", spec: TaskSpec(key: key), state: .leased,
            attempt: 1, maxAttempts: 1, unfinishedUpstream: 0, rank: 0, priority: 0, leaseOwner: lease.executorID,
            leaseExpiresAt: 30_000, createdAt: 0, readyAt: 0, startedAt: 0, traceID: "trace", dagVersion: 1)
        return ClaimedTask(
            task: task, lease: LeaseToken(taskID: task.taskID, fencingToken: 1), leaseExpiresAt: 30_000, upstreamResults: [:], inputs: [:])
    }
}

@Suite("Direct dispatch to idle lease streams")
struct DirectDispatchTests {
    static func dag(_ roots: [String], capabilities: [String] = [], child: Bool = true) -> Dag {
        var tasks = roots.map { TaskSpec(key: TaskKey($0), requiredCapabilities: capabilities) }
        var edges: [Edge] = []
        if child, let first = roots.first {
            tasks.append(TaskSpec(key: "child"))
            edges.append(Edge(TaskKey(first), "child"))
        }
        return Dag(tasks: tasks, edges: edges)
    }

    /// With fewer free slots than roots, the tasks listed first got them whatever their priority
    /// (found by black-box testing): slots go in the claim's order — priority (a task's own, else
    /// the workflow's), then critical-path rank, then the DAG's order.
    @Test("free slots go to a new workflow's roots by priority, then rank")
    func reservationsFollowPriorityThenRank() async throws {
        let store = EmptyQueueStore()
        let dispatch = DispatchService(store: store, signals: ChangeSignals())
        let one = TestSession(dispatch, ExecutorIdentity(executorID: "one", capabilities: [], maxInFlight: 1))
        #expect(await eventually { one.welcomed && store.claims.withLock { $0 } >= 1 })
        var dag = Self.dag(["a", "b", "z", "m"], child: false)
        dag.tasks[2].priority = 50
        dag.tasks[3].priority = 10
        let byPriority = try #require(dispatch.reserveIdle(for: dag, tenant: "acme", priority: 0, ranks: [:]))
        #expect(Array(byPriority.leases.keys) == ["z"])
        dispatch.cancel(byPriority)
        // The workflow's priority counts for tasks without their own: 20 beats m's 10, not z's 50.
        let workflowPriority = try #require(dispatch.reserveIdle(for: dag, tenant: "acme", priority: 20, ranks: ["b": 1]))
        #expect(Array(workflowPriority.leases.keys) == ["z"])
        dispatch.cancel(workflowPriority)
        dag.tasks[2].priority = 0
        dag.tasks[3].priority = 0
        let byRank = try #require(dispatch.reserveIdle(for: dag, tenant: "acme", priority: 20, ranks: ["b": 1, "m": 3]))
        #expect(Array(byRank.leases.keys) == ["m"])
        dispatch.cancel(byRank)
    }

    @Test("roots only, no more than the idle streams' free slots, each stream's capabilities and tenants respected")
    func reservationsRespectSlotsCapabilitiesAndTenants() async throws {
        let store = EmptyQueueStore()
        let dispatch = DispatchService(store: store, signals: ChangeSignals())
        let web = TestSession(dispatch, ExecutorIdentity(executorID: "web", capabilities: ["web"], maxInFlight: 2))
        let gpu = TestSession(dispatch, ExecutorIdentity(executorID: "gpu", capabilities: ["gpu", "web"], maxInFlight: 1, tenants: ["other"]))
        #expect(await eventually { web.welcomed && gpu.welcomed && store.claims.withLock { $0 } >= 2 })

        // "gpu" serves tenant "other" only: acme's web tasks can go to "web" alone, two at most.
        let reservation = try #require(dispatch.reserveIdle(for: Self.dag(["a", "b", "c"], capabilities: ["web"]), tenant: "acme", priority: 0, ranks: [:]))
        #expect(Set(reservation.leases.keys) == ["a", "b"] || Set(reservation.leases.keys) == ["a", "c"] || Set(reservation.leases.keys) == ["b", "c"])
        #expect(reservation.leases.values.allSatisfy { $0.executorID == "web" })
        // Its slots are promised: nothing is left for another workflow, nor for its own claims.
        #expect(dispatch.reserveIdle(for: Self.dag(["d"], capabilities: ["web"]), tenant: "acme", priority: 0, ranks: [:]) == nil)
        #expect(dispatch.registry.reserveFree(session: try #require(dispatch.registry.sessionIDs(executorID: "web").first), capacity: 2) == 0)
        // A task the idle stream lacks the capability for is not offered to it.
        #expect(dispatch.reserveIdle(for: Self.dag(["g"], capabilities: ["gpu"]), tenant: "acme", priority: 0, ranks: [:]) == nil)
        let other = try #require(dispatch.reserveIdle(for: Self.dag(["g"], capabilities: ["gpu"]), tenant: "other", priority: 0, ranks: [:]))
        #expect(other.leases["g"]?.executorID == "gpu")

        await dispatch.deliver(reservation, leased: leased(reservation))
        #expect(await eventually { web.assignments.count == 2 })
        #expect(dispatch.registry.count(session: try #require(dispatch.registry.sessionIDs(executorID: "web").first)) == 2)
        dispatch.cancel(other)
        await web.end()
        await gpu.end()
    }

    @Test("successive submissions go round the idle streams, and one looks only as far as it needs")
    func submissionsShareTheIdleStreams() async throws {
        let store = EmptyQueueStore()
        let dispatch = DispatchService(store: store, signals: ChangeSignals())
        let sessions = (0..<3).map { TestSession(dispatch, ExecutorIdentity(executorID: "e\($0)", capabilities: ["web"], maxInFlight: 1)) }
        let gpu = TestSession(dispatch, ExecutorIdentity(executorID: "gpu", capabilities: ["gpu"], maxInFlight: 1))
        #expect(await eventually { sessions.allSatisfy(\.welcomed) && gpu.welcomed && store.claims.withLock { $0 } >= 4 })
        var executors: [String] = []
        for index in 0..<3 {
            let reservation = try #require(dispatch.reserveIdle(for: Self.dag(["w\(index)"], capabilities: ["web"], child: false), tenant: "acme", priority: 0, ranks: [:]))
            executors.append(try #require(reservation.leases[TaskKey("w\(index)")]?.executorID))
        }
        #expect(Set(executors) == ["e0", "e1", "e2"])
        // The web streams are all reserved now; the gpu stream, wherever the scan starts, is found
        // for a gpu task (streams that cannot run any of the tasks do not end the search).
        #expect(dispatch.reserveIdle(for: Self.dag(["w3"], capabilities: ["web"], child: false), tenant: "acme", priority: 0, ranks: [:]) == nil)
        let gpuTask = try #require(dispatch.reserveIdle(for: Self.dag(["g"], capabilities: ["gpu"], child: false), tenant: "acme", priority: 0, ranks: [:]))
        #expect(gpuTask.leases["g"]?.executorID == "gpu")
        for session in sessions + [gpu] { await session.end() }
    }

    @Test("a stream that is busy or full is not offered new tasks; one that frees a slot is again")
    func busyStreamsAreSkipped() async throws {
        let store = EmptyQueueStore()
        let dispatch = DispatchService(store: store, signals: ChangeSignals())
        let session = TestSession(dispatch, ExecutorIdentity(executorID: "one", capabilities: [], maxInFlight: 1))
        #expect(await eventually { session.welcomed && store.claims.withLock { $0 } >= 1 })
        let first = try #require(dispatch.reserveIdle(for: Self.dag(["a"]), tenant: "acme", priority: 0, ranks: [:]))
        await dispatch.deliver(first, leased: leased(first))
        #expect(await eventually { session.assignments.count == 1 })
        #expect(dispatch.reserveIdle(for: Self.dag(["b"]), tenant: "acme", priority: 0, ranks: [:]) == nil)  // full

        let lease = session.assignments[0].lease
        session.input.yield(.report(lease, .completed(result: [])))
        #expect(await eventually { dispatch.registry.totalLeases == 0 })
        let second = try #require(await waitForReservation(dispatch, Self.dag(["b"])))
        #expect(second.leases["b"]?.executorID == "one")
        dispatch.cancel(second)
        await session.end()
    }

    @Test("tasks stored leased to a stream that ended before delivery are given back at once")
    func undeliverableLeasesAreReleased() async throws {
        let store = EmptyQueueStore()
        let dispatch = DispatchService(store: store, signals: ChangeSignals())
        let session = TestSession(dispatch, ExecutorIdentity(executorID: "leaving", capabilities: [], maxInFlight: 4))
        #expect(await eventually { session.welcomed && store.claims.withLock { $0 } >= 1 })
        let reservation = try #require(dispatch.reserveIdle(for: Self.dag(["a", "b"], child: false), tenant: "acme", priority: 0, ranks: [:]))
        await session.end()  // ends between the reservation and the workflow's commit
        let tasks = leased(reservation)
        await dispatch.deliver(reservation, leased: tasks)
        #expect(Set(store.released.withLock { $0 }) == Set(tasks.map(\.lease)))
        #expect(session.assignments.isEmpty)
        #expect(dispatch.registry.totalLeases == 0)
    }

    @Test("a stream is not offered work before its welcome is queued (its resumed leases are checked first)")
    func noAssignmentAheadOfTheWelcome() async throws {
        let store = GatedResumeStore()
        let dispatch = DispatchService(store: store, signals: ChangeSignals())
        let session = TestSession(
            dispatch, ExecutorIdentity(executorID: "back", capabilities: [], maxInFlight: 2),
            resume: [LeaseToken(taskID: "old", fencingToken: 3)])
        #expect(await eventually { store.waiting.withLock { $0 } })
        // Registered, free slots, nothing queued: but no welcome yet.
        #expect(dispatch.reserveIdle(for: Self.dag(["a"]), tenant: "acme", priority: 0, ranks: [:]) == nil)
        store.open()
        let reservation = try #require(await waitForReservation(dispatch, Self.dag(["a"])))
        await dispatch.deliver(reservation, leased: leased(reservation))
        #expect(await eventually { session.assignments.count == 1 })
        let first = session.sent.withLock { $0.first }
        if case .welcome(_, _, _, _, let rejected) = first {
            #expect(rejected == [LeaseToken(taskID: "old", fencingToken: 3)])
        } else {
            Issue.record("the first message was not the welcome: \(String(describing: first))")
        }
        await session.end()
    }

    @Test("no idle stream, no reservation; a shutting-down server reserves nothing")
    func nothingToReserve() async throws {
        let dispatch = DispatchService(store: EmptyQueueStore(), signals: ChangeSignals())
        #expect(dispatch.reserveIdle(for: Self.dag(["a"]), tenant: "acme", priority: 0, ranks: [:]) == nil)
        let session = TestSession(dispatch, ExecutorIdentity(executorID: "one", capabilities: [], maxInFlight: 1))
        #expect(await eventually { session.welcomed })
        dispatch.beginShutdown()
        #expect(dispatch.reserveIdle(for: Self.dag(["a"]), tenant: "acme", priority: 0, ranks: [:]) == nil)
        await session.end()
    }

    /// The session's dispatch loop claims once more after the completion frees its slot (and
    /// reserves it meanwhile), so the slot becomes offerable a moment later.
    private func waitForReservation(_ dispatch: DispatchService, _ dag: Dag) async -> DirectReservation? {
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            if let reservation = dispatch.reserveIdle(for: dag, tenant: "acme", priority: 0, ranks: [:]) { return reservation }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return nil
    }
}
