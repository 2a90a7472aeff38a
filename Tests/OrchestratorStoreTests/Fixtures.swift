import Foundation
import OrchestratorApp
import OrchestratorDomain
import OrchestratorStore
import PostgresClient
import Testing

/// Workflows and helpers shared by the store tests. Time is explicit: tests pass `now`.
enum Fixtures {
    static let t0: UnixMillis = 1_700_000_000_000
    static let actor = Actor(subject: "alice", role: "user", tenant: "acme")

    static func newID() -> String { "wf_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "") }

    static func task(
        _ key: TaskKey, capabilities: [String] = [], priority: Int = 0, retry: RetryPolicy = RetryPolicy(maxAttempts: 1), jitter: Double = 0
    ) -> TaskSpec {
        TaskSpec(key: key, requiredCapabilities: capabilities, priority: priority, retry: retry, metadata: ["k": "v"], retryJitter: jitter)
    }

    static func workflow(
        id: String = newID(), tenant: String = "acme", requestID: String? = nil, dag: Dag, ranks: [TaskKey: Double] = [:],
        payloads: [TaskKey: [UInt8]] = [:], policy: FailurePolicy = .failFast, priority: Int = 0, labels: [String: String] = [:],
        inputs: [String: String] = [:], now: UnixMillis = t0
    ) -> NewWorkflow {
        NewWorkflow(
            workflowID: id, tenant: tenant, requestID: requestID,
            query: Query(text: "do it", providedInputs: inputs, explicitGraph: dag, priority: priority, labels: labels), dag: dag,
            payloads: payloads, ranks: ranks, planning: PlanningRecord(planner: "explicit", durationMicros: 12, rationale: "given"),
            failurePolicy: policy, traceID: "trace-\(id)", labels: labels, priority: priority,
            actor: Actor(subject: "alice", role: "user", tenant: tenant), now: now)
    }

    /// a → b, a → c, b → d, c → d.
    static var diamond: Dag {
        Dag(tasks: ["a", "b", "c", "d"].map { task(TaskKey($0)) }, edges: [Edge("a", "b"), Edge("a", "c"), Edge("b", "d"), Edge("c", "d")])
    }

    static func independent(_ count: Int, capabilities: [String] = []) -> Dag {
        Dag(tasks: (0..<count).map { task(TaskKey("t\($0)"), capabilities: capabilities) })
    }

    static func claim(
        _ store: PostgresStore, executor: String = "exec-1", capabilities: Set<String> = [], tenants: Set<String>? = nil, limit: Int = 10,
        ttl: Int64 = 30_000, now: UnixMillis = t0
    ) async throws -> [ClaimedTask] {
        try await store.claimTasks(
            ClaimRequest(executorID: executor, capabilities: capabilities, tenants: tenants, limit: limit, leaseTTLMillis: ttl, now: now))
    }

    static func complete(_ store: PostgresStore, _ claimed: ClaimedTask, result: String = "ok", now: UnixMillis = t0) async throws -> ReportResult {
        try await store.report(
            TaskReport(lease: claimed.lease, executorID: claimed.task.leaseOwner ?? "exec-1", outcome: .completed(result: Array(result.utf8)), now: now))
    }

    static func fail(
        _ store: PostgresStore, _ claimed: ClaimedTask, retryable: Bool, jitterSample: Double = 0.5, now: UnixMillis = t0
    ) async throws -> ReportResult {
        try await store.report(
            TaskReport(
                lease: claimed.lease, executorID: claimed.task.leaseOwner ?? "exec-1",
                outcome: .failed(message: "boom", code: "E1", retryable: retryable), jitterSample: jitterSample, now: now))
    }

    static func states(_ store: PostgresStore, _ workflowID: String) async throws -> [String: TaskState] {
        Dictionary(uniqueKeysWithValues: try await store.tasks(workflowID: workflowID).map { ($0.spec.key.rawValue, $0.state) })
    }

    /// Waits until no transaction of this database holds the event-append lock (migration 0006), so
    /// every append a test started has committed or rolled back. Fails loudly after two minutes
    /// rather than letting a test read a partial log.
    static func settleEvents(_ pool: PostgresPool) async throws {
        let deadline = ContinuousClock.now + .seconds(120)
        while ContinuousClock.now < deadline {
            // An open transaction holding the append lock (migration 0006) has events still to commit.
            let pending = try await count(
                pool,
                """
                SELECT count(*) FROM pg_locks
                 WHERE locktype = 'advisory' AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
                   AND classid = 'workflow_events'::regclass::oid AND objid = 0 AND objsubid = 2
                """)
            if pending == 0 { return }
            try await Task.sleep(for: .milliseconds(10))
        }
        Issue.record("committed events stayed invisible for two minutes: a transaction somewhere never ended")
    }

    static func allEvents(_ store: PostgresStore, _ pool: PostgresPool, workflowID: String? = nil) async throws -> [StoredEvent] {
        try await settleEvents(pool)
        var events: [StoredEvent] = []
        var after: Int64 = 0
        while true {
            let page = try await store.events(EventQuery(afterSequence: after, workflowID: workflowID, limit: 1000))
            guard let last = page.last else { return events }
            events += page
            after = last.sequence
        }
    }

    static func count(_ pool: PostgresPool, _ sql: String, _ binds: [any PostgresEncodable] = []) async throws -> Int {
        try await pool.withConnection { try await $0.query(sql, binds).first!.decode(Int.self, at: 0) }
    }
}
