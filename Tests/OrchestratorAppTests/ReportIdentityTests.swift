@testable import OrchestratorApp
import OrchestratorDomain
import Testing

/// A refused report tells nothing of another tenant's task and disturbs no one else's lease.
/// Found by black-box security testing: an executor of tenant B learned the state and fencing
/// token of tenant A's task from a refused report ("held by another executor … latest token 1"),
/// and a refused report by anyone holding a guessed token took the real holder's live lease out
/// of the table the keeper extends, so the lease lapsed under a healthy executor.
@Suite("Report identity")
struct ReportIdentityTests {
    let lease = LeaseToken(taskID: "t1", fencingToken: 1)

    @Test func aStaleAnswerOnAnotherTenantsTaskIsUnknownTask() async throws {
        let store = ScriptedDispatchStore(.init(reportResult: .staleLease(currentToken: 1, state: .ready, tenant: "acme")))
        let dispatch = DispatchService(store: store, signals: ChangeSignals())
        let outcome = TaskReport.Outcome.completed(result: [])
        #expect(try await dispatch.report(lease, executorID: "beta/w/1", outcome: outcome, tenants: ["beta"]) == .unknownTask)
        #expect(try await dispatch.report(lease, executorID: "acme/w/2", outcome: outcome, tenants: ["acme", "beta"])
            == .staleLease(currentToken: 1, state: .ready, tenant: "acme"))
        // nil = every tenant (an executor in development mode, or of a `*` admin).
        #expect(try await dispatch.report(lease, executorID: "w", outcome: outcome, tenants: nil)
            == .staleLease(currentToken: 1, state: .ready, tenant: "acme"))
    }

    @Test func aRefusedReportByAnotherExecutorLeavesTheHoldersLeaseInPlace() async throws {
        let now: UnixMillis = 1_000_000
        let store = ScriptedDispatchStore(.init(
            claims: [[claimed("t1", attempt: 1, readyAt: now, leasedAt: now)]],
            reportResult: .staleLease(currentToken: 1, state: .leased, tenant: "default")))
        let dispatch = DispatchService(store: store, signals: ChangeSignals())
        let holder = ExecutorIdentity(executorID: "default/alice/w1", capabilities: [])
        let held = try await dispatch.poll(holder, maxTasks: 1, wait: .zero)
        #expect(held.map(\.lease) == [lease])
        #expect(dispatch.registry.sessionOf(lease) != nil)

        _ = try await dispatch.report(lease, executorID: "default/mallory/w1", outcome: .completed(result: []), tenants: ["default"])
        #expect(dispatch.registry.sessionOf(lease) != nil, "the holder's lease left the table")

        // The holder's own refused report (its lease was taken back meanwhile) does remove it.
        _ = try await dispatch.report(lease, executorID: "default/alice/w1", outcome: .completed(result: []), tenants: ["default"])
        #expect(dispatch.registry.sessionOf(lease) == nil)
    }

    @Test func aHeartbeatWithAnotherExecutorsTokenLeavesTheHoldersLeaseInPlace() async throws {
        let now: UnixMillis = 1_000_000
        let store = ScriptedDispatchStore(.init(claims: [[claimed("t1", attempt: 1, readyAt: now, leasedAt: now)]], extensionsValid: false))
        let dispatch = DispatchService(store: store, signals: ChangeSignals())
        let holder = ExecutorIdentity(executorID: "default/alice/w1", capabilities: [])
        _ = try await dispatch.poll(holder, maxTasks: 1, wait: .zero)
        let states = try await dispatch.heartbeat(executorID: "default/mallory/w1", leases: [lease])
        #expect(states.map(\.valid) == [false])
        #expect(dispatch.registry.sessionOf(lease) != nil, "the holder's lease left the table")
    }
}
