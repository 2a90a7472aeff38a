import OrchestratorDomain
import Synchronization
import Testing

@testable import OrchestratorApp

/// A wall clock that moves only when told to.
final class ManualWallClock: WallClock {
    private let millis = Mutex<UnixMillis>(1_700_000_000_000)
    func now() -> UnixMillis { millis.withLock { $0 } }
    func advance(_ delta: UnixMillis) { millis.withLock { $0 += delta } }
}

/// Claims take `delay` ms of the manual clock: a database slowed down by load or a bad network.
final class SlowClaimStore: TaskDispatchStore {
    private let clock: ManualWallClock
    private let delay: UnixMillis
    private let ready: Mutex<[StoredTask]>

    init(clock: ManualWallClock, delay: UnixMillis, tasks: [StoredTask]) {
        self.clock = clock
        self.delay = delay
        ready = Mutex(tasks)
    }

    func claimTasks(_ request: ClaimRequest) async throws -> [ClaimedTask] {
        let taken = ready.withLock { tasks in
            defer { tasks.removeAll() }
            return tasks
        }
        clock.advance(delay)
        // The database stamps the lease from the claim's `now`, as the real store does.
        return taken.map {
            ClaimedTask(task: $0, lease: LeaseToken(taskID: $0.taskID, fencingToken: 1),
                        leaseExpiresAt: request.now + request.leaseTTLMillis, upstreamResults: [:], inputs: [:])
        }
    }

    func report(_ report: TaskReport) async throws -> ReportResult { .accepted(taskState: .succeeded, workflowState: nil) }
    func extendLeases(_ extensions: [LeaseExtension]) async throws -> [LeaseState] { [] }
    func resumeLeases(_ extensions: [LeaseExtension], sessionID: String, now: UnixMillis) async throws -> [LeaseState] { [] }
    func expireLeases(now: UnixMillis, limit: Int) async throws -> [ExpiredLease] { [] }
    func releaseLeases(_ leases: [LeaseToken], executorID: String, sessionID: String?, reason: String, now: UnixMillis)
        async throws -> [ExpiredLease] { [] }
}

/// Found by tools/chaos: with the database slow (a claim taking longer than the lease TTL), every
/// lease was lapsed by the keeper the moment it was handed out — its "last heartbeat" was the
/// time the claim *started* — and the keeper then ended the healthy executor's whole session as
/// "stopped heartbeating", again and again, while the database stayed slow.
@Suite("Leases handed out by a slow claim")
struct SlowClaimLeaseTests {
    @Test func aLeaseLivesOneTTLFromItsHandOverNotFromTheStartOfTheClaim() async throws {
        let clock = ManualWallClock()
        let task = StoredTask(
            taskID: "t-1", workflowID: "wf_1", tenant: "default", spec: TaskSpec(key: "k", requiredCapabilities: ["c"]),
            state: .ready, maxAttempts: 3, unfinishedUpstream: 0, rank: 1, priority: 0, createdAt: 0, traceID: "", dagVersion: 1)
        var configuration = DispatchConfiguration()
        configuration.leaseTTL = .seconds(3)
        let dispatch = DispatchService(
            store: SlowClaimStore(clock: clock, delay: 5_000, tasks: [task]), signals: ChangeSignals(),
            configuration: configuration, clock: clock)

        let claimed = try await dispatch.poll(ExecutorIdentity(executorID: "ex-1", capabilities: ["c"]), maxTasks: 1, wait: .zero)
        #expect(claimed.map(\.lease.taskID) == ["t-1"])

        // Just handed over: not lapsed, but due for an extension (its database expiry already passed).
        let fresh = dispatch.registry.keeperWork(now: clock.now())
        #expect(fresh.lapsed.isEmpty)
        #expect(fresh.extend.map(\.token.taskID) == ["t-1"])

        // No heartbeat for a whole TTL after the hand-over: now it lapses.
        clock.advance(3_001)
        #expect(dispatch.registry.keeperWork(now: clock.now()).lapsed.map(\.token.taskID) == ["t-1"])
    }
}
