import OrchestratorDomain
import Synchronization
import Testing

@testable import OrchestratorApp

/// Refuses work from a cancelled task, as the PostgreSQL store does (`PostgresSession` throws
/// CancellationError before starting a statement for one), and records what it applied.
final class CancellationRefusingStore: TaskDispatchStore {
    let released = Mutex<[LeaseToken]>([])
    let reports = Mutex<[TaskReport]>([])

    private func refuseIfCancelled() throws {
        if Task.isCancelled { throw CancellationError() }
    }

    func claimTasks(_ request: ClaimRequest) async throws -> [ClaimedTask] {
        try refuseIfCancelled()
        return []
    }

    func report(_ report: TaskReport) async throws -> ReportResult {
        try refuseIfCancelled()
        reports.withLock { $0.append(report) }
        return .accepted(taskState: .failed, workflowState: nil)
    }

    func extendLeases(_ extensions: [LeaseExtension]) async throws -> [LeaseState] { [] }
    func resumeLeases(_ extensions: [LeaseExtension], sessionID: String, now: UnixMillis) async throws -> [LeaseState] { [] }
    func expireLeases(now: UnixMillis, limit: Int) async throws -> [ExpiredLease] { [] }

    func releaseLeases(_ leases: [LeaseToken], executorID: String, sessionID: String?, reason: String, now: UnixMillis)
        async throws -> [ExpiredLease] {
        try refuseIfCancelled()
        released.withLock { $0.append(contentsOf: leases) }
        return []
    }
}

/// Found by hand with `orchctl executor --tasks 1`: the executor exited right after its stream, the
/// server cancelled the stream's handler, and giving back the leases it still held failed with
/// CancellationError ("could not release leases; they will lapse"), so its tasks waited a whole
/// lease TTL for the reaper. A failure report sent just before the executor went away was dropped
/// the same way.
@Suite("Cleanup after an executor's stream is cancelled")
struct CancelledStreamCleanupTests {
    let store = CancellationRefusingStore()
    let lease = LeaseToken(taskID: "t-1", fencingToken: 1)

    func dispatch() -> DispatchService {
        DispatchService(store: store, signals: ChangeSignals(), configuration: DispatchConfiguration(), clock: ManualWallClock())
    }

    @Test func theLeasesOfAnEndedStreamAreGivenBackFromACancelledTask() async {
        let dispatch = dispatch()
        dispatch.registry.add([
            .init(token: lease, executorID: "ex-1", sessionID: "ses-1", ttlMillis: 30_000, lastHeartbeat: 0, databaseExpiry: 30_000)
        ])
        let session = Task {
            withUnsafeCurrentTask { $0?.cancel() }  // the client closed its connection
            await dispatch.releaseAll(of: "ses-1", executorID: "ex-1", reason: "stream ended")
        }
        await session.value
        #expect(store.released.withLock { $0 } == [lease])
        #expect(dispatch.liveLeaseCount == 0)
    }

    @Test func aFailureReportIsAppliedWhenItsStreamIsCancelledRightAfter() async throws {
        let dispatch = dispatch()
        let report = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return try await dispatch.report(
                lease, executorID: "ex-1", outcome: .failed(message: "disk full", code: "io", retryable: false), tenants: nil)
        }
        let result = try await report.value
        #expect(result == .accepted(taskState: .failed, workflowState: nil))
        let applied = store.reports.withLock { $0 }
        #expect(applied.count == 1)
        #expect(applied.first?.lease == lease)
    }
}
