@testable import OrchestratorApp
import OrchestratorDomain
import OrchestratorMetrics
import Synchronization
import Testing

/// A dispatch store that answers from a script: the tests drive `DispatchService` through one
/// lease's life and read what it recorded.
final class ScriptedDispatchStore: TaskDispatchStore, Sendable {
    struct Script: Sendable {
        var claims: [[ClaimedTask]] = []
        var reportResult: ReportResult = .accepted(taskState: .succeeded, workflowState: nil)
        var released: [ExpiredLease] = []
        /// When set, every lease extension is answered with this validity (nil: no answer).
        var extensionsValid: Bool? = nil
    }
    let script: Mutex<Script>

    init(_ script: Script) { self.script = Mutex(script) }

    func claimTasks(_ request: ClaimRequest) async throws -> [ClaimedTask] {
        script.withLock { $0.claims.isEmpty ? [] : $0.claims.removeFirst() }
    }
    func report(_ report: TaskReport) async throws -> ReportResult { script.withLock { $0.reportResult } }
    func extendLeases(_ extensions: [LeaseExtension]) async throws -> [LeaseState] {
        guard let valid = script.withLock({ $0.extensionsValid }) else { return [] }
        return extensions.map { LeaseState(lease: $0.lease, valid: valid, expiresAt: valid ? $0.until : nil) }
    }
    func resumeLeases(_ extensions: [LeaseExtension], sessionID: String, now: UnixMillis) async throws -> [LeaseState] { [] }
    func expireLeases(now: UnixMillis, limit: Int) async throws -> [ExpiredLease] { [] }
    func releaseLeases(_ leases: [LeaseToken], executorID: String, sessionID: String?, reason: String, now: UnixMillis)
        async throws -> [ExpiredLease] {
        script.withLock { $0.released }
    }
}

/// A wall clock the test moves.
final class StepClock: WallClock, Sendable {
    let value = Atomic<Int64>(1_000_000)
    func now() -> UnixMillis { value.load(ordering: .relaxed) }
    func advance(_ millis: Int64) { value.add(millis, ordering: .relaxed) }
}

func claimed(_ id: String, attempt: Int, readyAt: UnixMillis, leasedAt: UnixMillis) -> ClaimedTask {
    let task = StoredTask(
        taskID: id, workflowID: "wf_1", tenant: "default", spec: TaskSpec(key: TaskKey(id)), state: .leased, attempt: attempt,
        maxAttempts: 3, unfinishedUpstream: 0, rank: 1, priority: 0, createdAt: readyAt, readyAt: readyAt, traceID: "trace-1", dagVersion: 1)
    return ClaimedTask(task: task, lease: LeaseToken(taskID: id, fencingToken: Int64(attempt)), leaseExpiresAt: leasedAt + 30_000,
                       upstreamResults: [:], inputs: [:])
}

@Suite("Dispatch metrics")
struct DispatchMetricsTests {
    let identity = ExecutorIdentity(executorID: "ex-1", capabilities: ["echo"])

    @Test func aLeaseFromReadyToDoneIsTimedAndCounted() async throws {
        let clock = StepClock()
        let start = clock.now()
        let store = ScriptedDispatchStore(.init(claims: [[claimed("t1", attempt: 1, readyAt: start - 2_500, leasedAt: start)]]))
        let registry = MetricsRegistry()
        let metrics = DispatchMetrics(registry: registry)
        let dispatch = DispatchService(store: store, signals: ChangeSignals(), clock: clock, metrics: metrics)

        let tasks = try await dispatch.poll(identity, maxTasks: 1, wait: .zero)
        #expect(tasks.count == 1)
        #expect(metrics.tasksLeased.current == 1)
        #expect(metrics.reassignments.current == 0)
        #expect(metrics.readyToLeased.snapshot.count == 1)
        #expect(metrics.readyToLeased.snapshot.sum == 2.5)

        clock.advance(4_000)
        _ = try await dispatch.report(tasks[0].lease, executorID: "ex-1", outcome: .completed(result: []), tenants: nil)
        let done = metrics.leasedToDone.labels("succeeded").snapshot
        #expect(done.count == 1 && done.sum == 4)
        #expect(metrics.reports.labels("completed", "accepted").current == 1)
        #expect(metrics.retries.labels("failure").current == 0)
    }

    @Test func aRetryableFailureIsARetryAndASecondAttemptIsAReassignment() async throws {
        let clock = StepClock()
        let start = clock.now()
        let store = ScriptedDispatchStore(.init(
            claims: [[claimed("t1", attempt: 1, readyAt: start, leasedAt: start)], [claimed("t1", attempt: 2, readyAt: start, leasedAt: start)]],
            reportResult: .accepted(taskState: .ready, workflowState: nil)))
        let metrics = DispatchMetrics(registry: MetricsRegistry())
        let dispatch = DispatchService(store: store, signals: ChangeSignals(), clock: clock, metrics: metrics)

        let first = try await dispatch.poll(identity, maxTasks: 1, wait: .zero)
        _ = try await dispatch.report(first[0].lease, executorID: "ex-1", outcome: .failed(message: "boom", code: "x", retryable: true), tenants: nil)
        #expect(metrics.retries.labels("failure").current == 1)
        #expect(metrics.leasedToDone.labels("retried").snapshot.count == 1)
        #expect(metrics.reports.labels("failed", "accepted").current == 1)

        _ = try await dispatch.poll(identity, maxTasks: 1, wait: .zero)
        #expect(metrics.tasksLeased.current == 2)
        #expect(metrics.reassignments.current == 1)
    }

    @Test func staleReportsExpiriesAndReleasesAreCountedByCause() async throws {
        let store = ScriptedDispatchStore(.init(reportResult: .staleLease(currentToken: 2, state: .leased, tenant: "acme")))
        let metrics = DispatchMetrics(registry: MetricsRegistry())
        let dispatch = DispatchService(store: store, signals: ChangeSignals(), metrics: metrics)

        _ = try await dispatch.report(LeaseToken(taskID: "t9", fencingToken: 1), executorID: "ex-1", outcome: .completed(result: []), tenants: nil)
        #expect(metrics.reports.labels("completed", "stale").current == 1)
        #expect(metrics.leasedToDone.labels("succeeded").snapshot.count == 0)

        var requeued = ExpiredLease(lease: LeaseToken(taskID: "a", fencingToken: 1), workflowID: "wf", executorID: "ex", newState: .ready)
        var timedOut = ExpiredLease(lease: LeaseToken(taskID: "b", fencingToken: 3), workflowID: "wf", executorID: "ex", newState: .failed)
        timedOut.cause = .timeout
        requeued.cause = .leaseExpired
        dispatch.observeExpired([requeued, timedOut])
        #expect(metrics.leaseExpirations.labels("lease_expired").current == 1)
        #expect(metrics.leaseExpirations.labels("timeout").current == 1)
        #expect(metrics.retries.labels("lease_expired").current == 1)
        #expect(metrics.retries.labels("timeout").current == 0)  // attempts exhausted: failed, not retried

        var released = requeued
        released.cause = .cancelled
        dispatch.observeReleased([released])
        #expect(metrics.leasesReleased.current == 1)
        #expect(metrics.retries.labels("released").current == 1)
    }

    @Test func planningIsTimedByPlannerAndSizeClass() {
        #expect(PlanningMetrics.sizeClass(1) == "1-10")
        #expect(PlanningMetrics.sizeClass(10) == "1-10")
        #expect(PlanningMetrics.sizeClass(11) == "11-100")
        #expect(PlanningMetrics.sizeClass(1000) == "101-1000")
        #expect(PlanningMetrics.sizeClass(10_000) == "1001-10000")
        #expect(PlanningMetrics.sizeClass(10_001) == "10001+")
    }
}
