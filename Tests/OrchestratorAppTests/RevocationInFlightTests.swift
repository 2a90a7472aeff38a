@testable import OrchestratorApp
import OrchestratorDomain
import Synchronization
import Testing

/// A workflow-wide revocation (fail_fast, a finished or cancelled workflow) passes by a lease
/// whose completion or failure is being applied: found by black-box testing, a report applied in
/// the batch that finished the workflow was revoked, then acked as accepted.
@Suite("Revocations and reports in flight")
struct RevocationInFlightTests {
    @Test func aWorkflowRevocationSkipsLeasesWhoseFinalReportIsBeingApplied() {
        let registry = LeaseRegistry()
        let revoked = Mutex<[String]>([])
        registry.registerSession("s", handle: .init(revoke: { token, _ in revoked.withLock { $0.append(token.taskID) } }), openedAt: 0)
        let reporting = LeaseToken(taskID: "t-reporting", fencingToken: 1)
        let running = LeaseToken(taskID: "t-running", fencingToken: 1)
        registry.add([
            .init(token: reporting, executorID: "e", sessionID: "s", ttlMillis: 6_000, lastHeartbeat: 0, databaseExpiry: 6_000, workflowID: "wf"),
            .init(token: running, executorID: "e", sessionID: "s", ttlMillis: 6_000, lastHeartbeat: 0, databaseExpiry: 6_000, workflowID: "wf"),
        ])
        registry.setFinalReportInFlight(reporting, true)
        registry.setFinalReportInFlight(LeaseToken(taskID: "t-running", fencingToken: 2), true)  // another token: not this lease
        registry.revokeWorkflow("wf", reason: "workflow failed")
        #expect(revoked.withLock { $0 } == ["t-running"])

        // A report that was not applied leaves the lease held, and revocable again.
        registry.setFinalReportInFlight(reporting, false)
        registry.revokeWorkflow("wf", reason: "workflow failed")
        #expect(revoked.withLock { $0 } == ["t-running", "t-reporting"])
    }
}
