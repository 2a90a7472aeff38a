import OrchestratorDomain
import Synchronization
import Testing

@testable import OrchestratorApp

/// Tasks handed out by claims in the order they became ready. Task b depends on a: a's
/// completion is committed (b is ready, the commit's NOTIFY has woken the dispatch loops) but
/// answered only when the test opens the gate — the window in which a grpc-java client saw b's
/// assignment before a's ack (a CI run). Task c, of another workflow, became ready meanwhile.
final class SlowAnswerChainStore: TaskDispatchStore {
    private struct State {
        var ready = ["a"]
        var handedOut: Set<String> = []
        var gate: CheckedContinuation<Void, Never>?
    }

    private let state = Mutex(State())
    let signals: ChangeSignals

    init(signals: ChangeSignals) { self.signals = signals }

    var handedOut: Set<String> { state.withLock { $0.handedOut } }
    var answerWaiting: Bool { state.withLock { $0.gate != nil } }

    func answer() { state.withLock { $0.gate }?.resume() }

    func claimTasks(_ request: ClaimRequest) async throws -> [ClaimedTask] {
        state.withLock { state -> [ClaimedTask] in
            let claimed = state.ready.filter { !state.handedOut.contains($0) }.prefix(request.limit)
            state.handedOut.formUnion(claimed)
            return claimed.map(Self.task)
        }
    }

    func report(_ report: TaskReport) async throws -> ReportResult {
        state.withLock { $0.ready += ["b", "c"] }
        signals.signal(.tasksReady)  // what the commit's NOTIFY does
        await withCheckedContinuation { continuation in state.withLock { $0.gate = continuation } }
        return .accepted(taskState: .succeeded, workflowState: nil)
    }

    func extendLeases(_ extensions: [LeaseExtension]) async throws -> [LeaseState] { [] }
    func resumeLeases(_ extensions: [LeaseExtension], sessionID: String, now: UnixMillis) async throws -> [LeaseState] { [] }
    func expireLeases(now: UnixMillis, limit: Int) async throws -> [ExpiredLease] { [] }
    func releaseLeases(_ leases: [LeaseToken], executorID: String, sessionID: String?, reason: String, now: UnixMillis)
        async throws -> [ExpiredLease] { [] }

    static func workflow(_ key: String) -> String { key == "c" ? "wf_2" : "wf_1" }

    static func task(_ key: String) -> ClaimedTask {
        let task = StoredTask(
            taskID: "\(workflow(key))-\(key)", workflowID: workflow(key), tenant: "acme", spec: TaskSpec(key: TaskKey(key)), state: .leased,
            attempt: 1, maxAttempts: 1, unfinishedUpstream: 0, rank: 0, priority: 0, leaseOwner: "x",
            leaseExpiresAt: 30_000, createdAt: 0, readyAt: 0, startedAt: 0, traceID: "trace", dagVersion: 1)
        return ClaimedTask(
            task: task, lease: LeaseToken(taskID: task.taskID, fencingToken: 1), leaseExpiresAt: 30_000,
            upstreamResults: key == "b" ? ["a": Array("done".utf8)] : [:], inputs: [:])
    }
}

@Suite("Lease stream ordering")
struct AckBeforeUnblockedTaskTests {
    @Test("a task a completion made ready is sent after that completion's ack; a task ready anyway is not held back")
    func unblockedTaskWaitsForTheAck() async throws {
        let signals = ChangeSignals()
        let store = SlowAnswerChainStore(signals: signals)
        let dispatch = DispatchService(store: store, signals: signals)
        let session = TestSession(dispatch, ExecutorIdentity(executorID: "x", capabilities: [], maxInFlight: 3))
        #expect(await eventually { session.assignments.count == 1 })
        let a = try #require(session.assignments.first).lease

        session.input.yield(.report(a, .completed(result: Array("done".utf8))))
        // b and c are claimed while a's report is still unanswered: c goes out, b waits for the answer.
        #expect(await eventually { store.handedOut.contains("b") && store.answerWaiting })
        #expect(await eventually { session.assignments.count == 2 })
        try await Task.sleep(for: .milliseconds(100))
        #expect(session.assignments.map(\.task.spec.key) == ["a", "c"])

        store.answer()
        #expect(await eventually { session.assignments.count == 3 })
        let order = session.sent.withLock { sent in
            sent.compactMap { output -> String? in
                switch output {
                case .ack(let lease, _): "ack \(lease.taskID)"
                case .assignment(let task): "assignment \(task.task.taskID)"
                default: nil
                }
            }
        }
        #expect(order == ["assignment wf_1-a", "assignment wf_2-c", "ack wf_1-a", "assignment wf_1-b"])
        await session.end()
    }
}
