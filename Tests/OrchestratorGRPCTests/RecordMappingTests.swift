import OrchestratorAPI
import OrchestratorApp
import OrchestratorDomain
import OrchestratorGRPC
import Testing

@Suite("Mappings: stored records → proto")
struct RecordMappingTests {
    static let traceID = "4bf92f3577b34da6a3ce929d0e0e4736"

    static func task(
        _ key: TaskKey, state: TaskState, availableAt: UnixMillis? = nil, failure: TaskFailureInfo? = nil
    ) -> StoredTask {
        StoredTask(
            taskID: "t_\(key)", workflowID: "wf_1", tenant: "acme",
            spec: TaskSpec(key: key, requiredCapabilities: ["http"], estimatedCost: 2, retry: RetryPolicy(maxAttempts: 4)),
            payload: [7], state: state, attempt: 2, maxAttempts: 4, unfinishedUpstream: 1, rank: 9.5, priority: 3,
            leaseOwner: "exec-1", leaseExpiresAt: 5_000, availableAt: availableAt, result: [1, 2], lastError: failure,
            createdAt: 1_000, readyAt: 1_100, startedAt: 1_200, finishedAt: nil, traceID: traceID, dagVersion: 2)
    }

    @Test func storedTaskMapsEveryField() throws {
        let failure = TaskFailureInfo(message: "HTTP 503", code: "HTTP_503", retryable: true, attempt: 1, source: .executor)
        let proto = Orchestrator_V1_Task(
            Self.task("fetch", state: .ready, availableAt: 3_000, failure: failure), dependsOn: ["seed"], now: 2_000)
        #expect(proto.taskID == "t_fetch")
        #expect(proto.workflowID == "wf_1")
        #expect(proto.state == .retryWait)
        #expect(proto.spec?.key == "fetch")
        #expect(proto.spec?.dependsOn == ["seed"])
        #expect(proto.spec?.payload == [7])
        #expect(proto.spec?.retry?.maxAttempts == 4)
        #expect(proto.attempt == 2 && proto.maxAttempts == 4)
        #expect(proto.unfinishedUpstream == 1)
        #expect(proto.rank == 9.5)
        #expect(proto.leaseOwner == "exec-1" && proto.leaseExpiresUnixMs == 5_000)
        #expect(proto.result == [1, 2])
        #expect(
            proto.lastError
                == Orchestrator_V1_TaskError(message: "HTTP 503", code: "HTTP_503", retryable: true, attempt: 1, source: "executor"))
        #expect(proto.createdUnixMs == 1_000 && proto.readyUnixMs == 1_100 && proto.startedUnixMs == 1_200 && proto.finishedUnixMs == 0)
        #expect(proto.traceID == Self.traceID)
        #expect(proto.dagVersion == 2)

        // Once its backoff has passed, the same task is READY.
        #expect(Orchestrator_V1_Task(Self.task("fetch", state: .ready, availableAt: 3_000), now: 3_000).state == .ready)
    }

    @Test func workflowRecord() throws {
        let query = Query(text: "research x", goal: Goal(artifacts: ["report"]), priority: 2, labels: ["team": "a"])
        let record = WorkflowRecord(
            workflowID: "wf_1", tenant: "acme", requestID: "req-1", state: .running, query: query, currentDagVersion: 3,
            failurePolicy: .continueIndependent, traceID: Self.traceID, labels: ["team": "a"], priority: 2,
            planning: PlanningRecord(planner: "catalog", durationMicros: 1_234, rationale: "because", warnings: ["w"], totalCost: 18),
            counts: TaskCounts(byState: [.pending: 2, .ready: 1, .succeeded: 3]), error: nil, submittedBy: "alice",
            createdAt: 10, updatedAt: 20, finishedAt: nil)
        let proto = Orchestrator_V1_Workflow(record, now: 0)
        #expect(proto.workflowID == "wf_1" && proto.tenant == "acme" && proto.requestID == "req-1")
        #expect(proto.state == .running)
        #expect(
            proto.query
                == Orchestrator_V1_Query(
                    text: "research x", goals: ["report"], priority: 2, labels: ["team": "a"], failurePolicy: .continueIndependent))
        #expect(proto.currentDagVersion == 3)
        #expect(proto.failurePolicy == .continueIndependent)
        #expect(proto.traceID == Self.traceID)
        #expect(proto.labels == ["team": "a"])
        #expect(proto.counts == Orchestrator_V1_TaskCounts(total: 6, pending: 2, ready: 1, succeeded: 3))
        #expect(
            proto.planning
                == Orchestrator_V1_PlanningInfo(planner: "catalog", durationUs: 1_234, rationale: "because", warnings: ["w"], totalCost: 18)
        )
        #expect(proto.error == "" && proto.finishedUnixMs == 0)
        #expect(proto.createdUnixMs == 10 && proto.updatedUnixMs == 20)
        #expect(proto.submittedBy == "alice")
        #expect(proto.tasks.isEmpty)

        // With tasks: counts come from them (READY in backoff counts as RETRY_WAIT), edges fill depends_on.
        let tasks = [Self.task("a", state: .succeeded), Self.task("b", state: .ready, availableAt: 99)]
        let withTasks = Orchestrator_V1_Workflow(record, tasks: tasks, dag: Dag(tasks: tasks.map(\.spec), edges: [Edge("a", "b")]), now: 50)
        #expect(withTasks.counts == Orchestrator_V1_TaskCounts(total: 2, succeeded: 1, retryWait: 1))
        #expect(withTasks.tasks.map { $0.spec?.dependsOn ?? [] } == [[], ["a"]])
    }

    @Test func storedEvent() {
        let event = StoredEvent(
            sequence: 42, workflowID: "wf_1", tenant: "acme", kind: .taskProgress, at: 1_000, taskID: "t_a", taskKey: "a",
            taskState: .running, attempt: 2, executorID: "exec-1", workflowState: .running, dagVersion: 1, message: "half",
            progress: 0.5, traceID: Self.traceID, actor: Actor(subject: "exec-1", role: "executor", tenant: "acme"))
        #expect(
            Orchestrator_V1_WorkflowEvent(event)
                == Orchestrator_V1_WorkflowEvent(
                    sequence: 42, workflowID: "wf_1", type: .taskProgress, atUnixMs: 1_000, taskID: "t_a", taskKey: "a",
                    taskState: .running,
                    attempt: 2, executorID: "exec-1", workflowState: .running, dagVersion: 1, message: "half", progress: 0.5,
                    traceID: Self.traceID, actor: Orchestrator_V1_Actor(subject: "exec-1", role: "executor", tenant: "acme")))

        let bare = StoredEvent(sequence: 1, workflowID: "wf_1", tenant: "acme", kind: .workflowSubmitted, at: 5, traceID: Self.traceID)
        let proto = Orchestrator_V1_WorkflowEvent(bare)
        #expect(proto.taskState == .unspecified && proto.workflowState == .unspecified && proto.actor == nil && proto.taskID == "")
    }

    @Test func assignment() throws {
        let claimed = ClaimedTask(
            task: Self.task("fetch", state: .leased), lease: LeaseToken(taskID: "t_fetch", fencingToken: 2), leaseExpiresAt: 31_000,
            upstreamResults: ["seed": [9]], inputs: ["urls": "https://example.org"])
        let proto = Orchestrator_V1_Assignment(claimed, leaseTTLMillis: 30_000, spanID: "00f067aa0ba902b7")
        #expect(proto.lease == Orchestrator_V1_LeaseToken(taskID: "t_fetch", fencingToken: 2))
        #expect(proto.workflowID == "wf_1")
        #expect(proto.spec?.key == "fetch" && proto.spec?.payload == [7] && proto.spec?.dependsOn == ["seed"])
        #expect(proto.attempt == 2 && proto.maxAttempts == 4)
        #expect(proto.leaseExpiresUnixMs == 31_000 && proto.leaseTtlMs == 30_000)
        #expect(proto.upstreamResults == ["seed": [9]])
        #expect(proto.inputs == ["urls": "https://example.org"])
        #expect(proto.traceparent == "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")

        // The size budget is exact up to the TTL's varint: never under what is sent.
        let estimate = Orchestrator_V1_Assignment.encodedSize(of: claimed)
        for ttl: Int64 in [1, 30_000, 24 * 86_400_000] {
            let sent = try Orchestrator_V1_Assignment(claimed, leaseTTLMillis: ttl).serializedBytes().count
            #expect(estimate >= sent && estimate - sent <= 4, "ttl \(ttl): \(estimate) vs \(sent)")
        }

        let random = Orchestrator_V1_Assignment(claimed, leaseTTLMillis: 30_000)
        let parts = random.traceparent.split(separator: "-")
        #expect(parts.count == 4 && parts[1] == Substring(Self.traceID) && parts[2].count == 16 && parts[3] == "01")
        #expect(TraceParent.header(traceID: "not-a-trace", spanID: "00f067aa0ba902b7") == nil)
        #expect(TraceParent.header(traceID: String(repeating: "0", count: 32), spanID: "00f067aa0ba902b7") == nil)
    }

    @Test func dagVersionAndHistory() {
        let stored = StoredDagVersion(
            workflowID: "wf_1", version: 2, dag: Dag(tasks: [TaskSpec(key: "a"), TaskSpec(key: "b")], edges: [Edge("a", "b")]),
            reason: "UpdateDag: add b", author: "alice", createdAt: 77)
        let dag = Orchestrator_V1_Dag(stored)
        #expect(dag.version == 2 && dag.reason == "UpdateDag: add b" && dag.author == "alice" && dag.createdUnixMs == 77)
        #expect(dag.tasks.map(\.dependsOn) == [[], ["a"]])
        #expect(
            Orchestrator_V1_DagVersionInfo(DagVersionSummary(version: 2, taskCount: 2, reason: "UpdateDag: add b", author: "alice", createdAt: 77))
                == Orchestrator_V1_DagVersionInfo(
                    version: 2, reason: "UpdateDag: add b", author: "alice", createdUnixMs: 77, taskCount: 2))
        #expect(Orchestrator_V1_Edge(Edge("a", "b")).domainEdge == Edge("a", "b"))
    }
}
