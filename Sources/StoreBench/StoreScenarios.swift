import Foundation
import OrchestratorApp
import OrchestratorDomain
import OrchestratorStore
import PostgresClient

/// The repositories the scenarios use (no change feed: nothing here waits for signals).
struct PostgresDispatchAndWorkflows: Sendable {
    let workflows: PostgresWorkflowStore
    let dispatch: PostgresDispatchStore
    let pool: PostgresPool

    init(pool: PostgresPool, configuration: StoreConfiguration = StoreConfiguration()) {
        self.pool = pool
        workflows = PostgresWorkflowStore(pool: pool, configuration: configuration)
        dispatch = PostgresDispatchStore(pool: pool, configuration: configuration)
    }
}

enum StoreScenarios {
    static func now() -> UnixMillis { UnixMillis(Date().timeIntervalSince1970 * 1000) }

    static func newWorkflow(_ dag: Dag) -> NewWorkflow {
        let id = "wf_bench_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        return NewWorkflow(
            workflowID: id, tenant: "bench", requestID: nil, query: Query(text: "bench"), dag: dag, ranks: [:],
            planning: PlanningRecord(planner: "explicit", durationMicros: 0, rationale: "bench"), failurePolicy: .continueIndependent,
            traceID: "bench", labels: [:], priority: 0, actor: Actor(subject: "bench", role: "admin", tenant: "bench"), now: now())
    }

    /// 100 layers of 1,000 tasks, each depending on two tasks of the layer before (198,000 edges).
    /// Returns the wall time of `createWorkflow` in milliseconds (graph building excluded).
    static func storeLargeDag(_ store: PostgresDispatchAndWorkflows) async throws -> Int {
        var tasks: [TaskSpec] = []
        var edges: [Edge] = []
        let width = 1_000
        for layer in 0..<100 {
            for index in 0..<width {
                let key = TaskKey("L\(layer)-\(index)")
                tasks.append(TaskSpec(key: key, requiredCapabilities: ["cpu"], priority: index % 5))
                if layer > 0 {
                    edges.append(Edge(TaskKey("L\(layer - 1)-\(index)"), key))
                    edges.append(Edge(TaskKey("L\(layer - 1)-\((index + 1) % width)"), key))
                }
            }
        }
        let workflow = newWorkflow(Dag(tasks: tasks, edges: edges))
        let started = ContinuousClock.now
        _ = try await store.workflows.createWorkflow(workflow)
        let elapsed = ContinuousClock.now - started
        _ = try await store.workflows.cancelWorkflow(
            id: workflow.workflowID, tenant: nil, reason: "bench done", actor: workflow.actor, now: now())
        return Int(elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000)
    }

    private static func complete(_ task: ClaimedTask, executor: String, store: PostgresDispatchAndWorkflows) async throws {
        let result = try await store.dispatch.report(
            TaskReport(lease: task.lease, executorID: executor, outcome: .completed(result: [1]), now: now()))
        guard case .accepted = result else { fatalError("report refused: \(result)") }
    }

    /// Workers each loop: claim up to `batch` tasks, complete them (one report each: concurrently,
    /// as an executor running them at once would, or one after the other with `sequentialReports`),
    /// until `seconds` pass or the queue is empty. The store batches concurrent claims and reports
    /// (group commit). Returns completions per second.
    static func claimComplete(
        _ store: PostgresDispatchAndWorkflows, workers: Int, tasks: Int, seconds: Double, batch: Int, sequentialReports: Bool
    ) async throws -> Double {
        let dag = Dag(tasks: (0..<tasks).map { TaskSpec(key: TaskKey("t\($0)"), requiredCapabilities: ["cpu"]) })
        let workflow = newWorkflow(dag)
        _ = try await store.workflows.createWorkflow(workflow)
        // Steady state: a live database has statistics; right after a bulk load autovacuum may
        // not have analyzed yet (it runs once a minute).
        try await store.pool.withConnection { try await $0.simpleQuery("ANALYZE tasks, edges, workflow_events, task_attempts") }
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        let started = ContinuousClock.now
        let completed = try await withThrowingTaskGroup(of: Int.self) { group in
            for worker in 0..<workers {
                group.addTask {
                    let executor = "bench-\(worker)"
                    var done = 0
                    while ContinuousClock.now < deadline {
                        let claimed = try await store.dispatch.claimTasks(
                            ClaimRequest(executorID: executor, capabilities: ["cpu"], tenants: nil, limit: batch, leaseTTLMillis: 60_000, now: now()))
                        if claimed.isEmpty { return done }
                        if sequentialReports {
                            for task in claimed {
                                try await complete(task, executor: executor, store: store)
                            }
                        } else {
                            // An executor running `batch` tasks at once reports each as it finishes:
                            // its reports are in flight together (and share the store's batches).
                            try await withThrowingTaskGroup(of: Void.self) { reports in
                                for task in claimed {
                                    reports.addTask { try await complete(task, executor: executor, store: store) }
                                }
                                try await reports.waitForAll()
                            }
                        }
                        done += claimed.count
                    }
                    return done
                }
            }
            return try await group.reduce(0, +)
        }
        let elapsed = ContinuousClock.now - started
        let secondsElapsed = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        if let current = try await store.workflows.workflow(id: workflow.workflowID, tenant: nil), !current.state.isTerminal {
            _ = try await store.workflows.cancelWorkflow(
                id: workflow.workflowID, tenant: nil, reason: "bench done", actor: workflow.actor, now: now())
        }
        return Double(completed) / secondsElapsed
    }
}
