import OrchestratorDomain
import Synchronization
import Testing

@testable import OrchestratorApp

/// Hands out its tasks at the first claim — once `gate` opens, if there is one — and records the
/// leases given back unsent.
final class UnsentRecordingStore: TaskDispatchStore {
    private let ready: Mutex<[StoredTask]>
    private let returned = Mutex<[[String]]>([])
    let claimStarted: AsyncStream<Void>
    private let claimStartedContinuation: AsyncStream<Void>.Continuation
    private let gate: AsyncStream<Void>?
    let openGate: AsyncStream<Void>.Continuation?

    init(tasks: [StoredTask], gated: Bool) {
        ready = Mutex(tasks)
        (claimStarted, claimStartedContinuation) = AsyncStream.makeStream()
        if gated {
            let (stream, continuation) = AsyncStream<Void>.makeStream()
            (gate, openGate) = (stream, continuation)
        } else {
            (gate, openGate) = (nil, nil)
        }
    }

    var returnedLeases: [[String]] { returned.withLock { $0 } }

    func claimTasks(_ request: ClaimRequest) async throws -> [ClaimedTask] {
        claimStartedContinuation.yield()
        if let gate {
            // Like a group-commit batch: the answer comes even if the caller was cancelled meanwhile.
            await Task { for await _ in gate { break } }.value
        }
        let taken = ready.withLock { tasks in
            defer { tasks.removeAll() }
            return Array(tasks.prefix(request.limit))
        }
        return taken.map {
            ClaimedTask(task: $0, lease: LeaseToken(taskID: $0.taskID, fencingToken: 1),
                        leaseExpiresAt: request.now + request.leaseTTLMillis, upstreamResults: [:], inputs: [:])
        }
    }

    func returnUnsentLeases(_ leases: [LeaseToken], executorID: String, reason: String, now: UnixMillis) async throws -> Int {
        returned.withLock { $0.append(leases.map(\.taskID)) }
        return leases.count
    }

    func report(_ report: TaskReport) async throws -> ReportResult { .accepted(taskState: .succeeded, workflowState: nil) }
    func extendLeases(_ extensions: [LeaseExtension]) async throws -> [LeaseState] { [] }
    func resumeLeases(_ extensions: [LeaseExtension], sessionID: String, now: UnixMillis) async throws -> [LeaseState] { [] }
    func expireLeases(now: UnixMillis, limit: Int) async throws -> [ExpiredLease] { [] }
    func releaseLeases(_ leases: [LeaseToken], executorID: String, sessionID: String?, reason: String, now: UnixMillis)
        async throws -> [ExpiredLease] { [] }
}

/// A PollTasks response carries the assignments that fit in what a client accepts; tasks claimed
/// for a response that cannot carry them, or for a caller that is gone, go back unspent instead of
/// staying leased to nobody until their TTL.
@Suite("What one PollTasks response carries")
struct PollResponseBudgetTests {
    static func task(_ id: String, payloadBytes: Int) -> StoredTask {
        StoredTask(
            taskID: id, workflowID: "wf_1", tenant: "default",
            spec: TaskSpec(key: TaskKey(id), requiredCapabilities: ["c"]), payload: [UInt8](repeating: 1, count: payloadBytes),
            state: .ready, maxAttempts: 3, unfinishedUpstream: 0, rank: 1, priority: 0, createdAt: 0, traceID: "", dagVersion: 1)
    }

    static func dispatch(_ store: UnsentRecordingStore, limit: Int) -> DispatchService {
        var configuration = DispatchConfiguration()
        configuration.maxAssignmentBytes = limit
        // The carried bytes plus a fixed 100 for the rest, instead of the gRPC layer's encoding.
        configuration.assignmentSize = { $0.assignmentBytesLowerBound + 100 }
        return DispatchService(store: store, signals: ChangeSignals(), configuration: configuration, clock: ManualWallClock())
    }

    @Test func theTasksThatDoNotFitGoBackAndLeaveTheLeaseTable() async throws {
        let store = UnsentRecordingStore(
            tasks: ["t-1", "t-2", "t-3"].map { Self.task($0, payloadBytes: 30_000) }, gated: false)
        let dispatch = Self.dispatch(store, limit: 70_000)

        let sent = try await dispatch.poll(ExecutorIdentity(executorID: "ex-1", capabilities: ["c"]), maxTasks: 3, wait: .zero)

        #expect(sent.map(\.lease.taskID) == ["t-1", "t-2"])
        #expect(store.returnedLeases == [["t-3"]])
        #expect(dispatch.registry.sessionOf(LeaseToken(taskID: "t-3", fencingToken: 1)) == nil)
        #expect(dispatch.registry.sessionOf(LeaseToken(taskID: "t-2", fencingToken: 1)) != nil)
    }

    @Test func oneAssignmentGoesAloneWhateverItsEnvelope() async throws {
        let store = UnsentRecordingStore(tasks: ["t-1", "t-2"].map { Self.task($0, payloadBytes: 69_000) }, gated: false)
        let dispatch = Self.dispatch(store, limit: 70_000)

        let sent = try await dispatch.poll(ExecutorIdentity(executorID: "ex-1", capabilities: ["c"]), maxTasks: 2, wait: .zero)

        #expect(sent.map(\.lease.taskID) == ["t-1"])
        #expect(store.returnedLeases == [["t-2"]])
    }

    @Test func smallAssignmentsAreAllSentWithoutSizing() async throws {
        let store = UnsentRecordingStore(tasks: (1...5).map { Self.task("t-\($0)", payloadBytes: 10) }, gated: false)
        let dispatch = Self.dispatch(store, limit: 70_000)

        let sent = try await dispatch.poll(ExecutorIdentity(executorID: "ex-1", capabilities: ["c"]), maxTasks: 5, wait: .zero)

        #expect(sent.count == 5)
        #expect(store.returnedLeases.isEmpty)
    }

    @Test func tasksClaimedForACallerThatWentAwayGoBack() async throws {
        let store = UnsentRecordingStore(tasks: [Self.task("t-1", payloadBytes: 10)], gated: true)
        let dispatch = Self.dispatch(store, limit: 70_000)

        let poll = Task { try await dispatch.poll(ExecutorIdentity(executorID: "ex-1", capabilities: ["c"]), maxTasks: 1, wait: .seconds(5)) }
        for await _ in store.claimStarted { break }
        poll.cancel()
        store.openGate?.yield()

        #expect(try await poll.value.isEmpty)
        #expect(store.returnedLeases == [["t-1"]])
        #expect(dispatch.registry.sessionOf(LeaseToken(taskID: "t-1", fencingToken: 1)) == nil)
    }
}
