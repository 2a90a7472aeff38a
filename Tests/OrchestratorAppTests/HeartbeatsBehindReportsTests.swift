import OrchestratorDomain
import Synchronization
import Testing

@testable import OrchestratorApp

/// Hands out tasks a and b once; a failure report waits until the test opens the gate, as one
/// held up by lock waits under fail_fast does.
final class SlowFailureStore: TaskDispatchStore {
    private struct State {
        var handedOut = false
        var gate: CheckedContinuation<Void, Never>?
    }

    private let state = Mutex(State())

    var failureWaiting: Bool { state.withLock { $0.gate != nil } }

    func open() { state.withLock { $0.gate }?.resume() }

    func claimTasks(_ request: ClaimRequest) async throws -> [ClaimedTask] {
        let first = state.withLock { state -> Bool in
            defer { state.handedOut = true }
            return !state.handedOut
        }
        return first ? ["a", "b"].map(SlowAnswerChainStore.task) : []
    }

    func report(_ report: TaskReport) async throws -> ReportResult {
        guard case .failed = report.outcome else { return .accepted(taskState: .succeeded, workflowState: nil) }
        await withCheckedContinuation { continuation in state.withLock { $0.gate = continuation } }
        return .accepted(taskState: .failed, workflowState: .failed)
    }

    func extendLeases(_ extensions: [LeaseExtension]) async throws -> [LeaseState] { [] }
    func resumeLeases(_ extensions: [LeaseExtension], sessionID: String, now: UnixMillis) async throws -> [LeaseState] { [] }
    func expireLeases(now: UnixMillis, limit: Int) async throws -> [ExpiredLease] { [] }
    func releaseLeases(_ leases: [LeaseToken], executorID: String, sessionID: String?, reason: String, now: UnixMillis)
        async throws -> [ExpiredLease] { [] }
}

@Suite("Lease stream heartbeats")
struct HeartbeatsBehindReportsTests {
    @Test("a heartbeat behind a report waiting for admission is answered at once")
    func heartbeatNotHeldUpByAdmission() async throws {
        let store = SlowFailureStore()
        let dispatch = DispatchService(store: store, signals: ChangeSignals())
        let session = TestSession(dispatch, ExecutorIdentity(executorID: "x", capabilities: [], maxInFlight: 2))
        #expect(await eventually { session.assignments.count == 2 })
        let leases = session.assignments.map(\.lease)

        // The failure is applied alone; the completion behind it waits for admission.
        session.input.yield(.report(leases[0], .failed(message: "boom", code: "x", retryable: false)))
        #expect(await eventually { store.failureWaiting })
        session.input.yield(.report(leases[1], .completed(result: [])))
        session.input.yield(.heartbeat([]))
        // Answered while the failure is still being applied: held up behind it, the heartbeats
        // of a stream stopped and its leases lapsed.
        #expect(await eventually { session.heartbeatAcks.count == 1 })
        #expect(session.heartbeatAcks.first?.map(\.lease).sorted { $0.taskID < $1.taskID } == leases.sorted { $0.taskID < $1.taskID })
        #expect(session.acks.isEmpty)

        // Then both reports are answered, in the order they were sent.
        store.open()
        #expect(await eventually { session.acks.count == 2 })
        #expect(session.acks.map(\.0) == leases)
        await session.end()
    }
}

extension TestSession {
    var heartbeatAcks: [[LeaseState]] {
        sent.withLock { $0.compactMap { if case .heartbeatAck(let states) = $0 { states } else { nil } } }
    }

    var acks: [(LeaseToken, ReportResult)] {
        sent.withLock { $0.compactMap { if case .ack(let lease, let result) = $0 { (lease, result) } else { nil } } }
    }
}
