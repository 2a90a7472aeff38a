import OrchestratorAPI
import OrchestratorApp
import OrchestratorDomain
import OrchestratorGRPC
import Testing

@Suite("Mappings: proto → domain → proto")
struct MappingRoundTripTests {
    /// A spec with every field set to a value that is not its default.
    static let fullSpec = Orchestrator_V1_TaskSpec(
        key: "summarise", name: "Summarise the sources", description: "one summary per source",
        dependsOn: ["fetch", "extract"], requiredCapabilities: ["llm.summarise", "gpu"], inputs: ["extracts"],
        outputs: ["summaries"], estimatedCost: 2.5, priority: -3,
        resources: Orchestrator_V1_Resources(cpuCores: 0.5, memoryMb: 512, gpus: 1, custom: ["tokens": 20_000]),
        retry: Orchestrator_V1_RetryPolicy(maxAttempts: 5, initialBackoffMs: 250, maxBackoffMs: 8_000, backoffMultiplier: 1.5, jitter: 0.2),
        timeouts: Orchestrator_V1_Timeouts(startToCloseMs: 30_000, leaseTtlMs: 15_000), labels: ["team": "research", "tier": "gold"],
        payload: Array(#"{"style":"brief"}"#.utf8), rationale: "needed for the report")

    static let fullGraph = Orchestrator_V1_Dag(tasks: [
        Orchestrator_V1_TaskSpec(
            key: "fetch", name: "fetch", requiredCapabilities: ["http"], estimatedCost: 1,
            retry: Orchestrator_V1_RetryPolicy(maxAttempts: 3, initialBackoffMs: 1_000, maxBackoffMs: 60_000, backoffMultiplier: 2),
            payload: [1, 2, 3]),
        Orchestrator_V1_TaskSpec(
            key: "extract", name: "extract", dependsOn: ["fetch"], estimatedCost: 3,
            retry: Orchestrator_V1_RetryPolicy(maxAttempts: 1, initialBackoffMs: 1_000, maxBackoffMs: 60_000, backoffMultiplier: 2)),
        fullSpec,
    ])

    @Test func taskSpecPreservesEveryField() throws {
        var problems = ProblemList()
        let decoded = DecodedDag(proto: Self.fullGraph, problems: &problems)
        #expect(problems.isEmpty)
        let spec = try #require(decoded.dag.task("summarise"))
        #expect(spec.description == "one summary per source")
        #expect(spec.resources == ResourceNeeds(cpuMillis: 500, memoryMiB: 512, gpus: 1, custom: ["tokens": 20_000]))
        #expect(spec.retry == RetryPolicy(maxAttempts: 5, initialBackoffMillis: 250, maxBackoffMillis: 8_000, backoffMultiplier: 1.5))
        #expect(spec.retryJitter == 0.2)
        #expect(spec.timeoutSeconds == 30)
        #expect(spec.heartbeatTimeoutSeconds == 15)
        #expect(spec.priority == -3)
        #expect(decoded.dag.edges == [Edge("fetch", "extract"), Edge("fetch", "summarise"), Edge("extract", "summarise")])
        #expect(decoded.payloads == ["fetch": [1, 2, 3], "summarise": Array(#"{"style":"brief"}"#.utf8)])

        let back = Orchestrator_V1_Dag(decoded.dag, payloads: decoded.payloads)
        #expect(back == Self.fullGraph)
    }

    @Test func queryPreservesEveryField() throws {
        let proto = Orchestrator_V1_Query(
            text: "investigate fencing tokens", goals: ["reviewed_report", "answer"], inputs: ["urls": "https://example.org"],
            graph: Self.fullGraph, planner: .explicit, priority: 7, labels: ["project": "x"],
            constraints: Orchestrator_V1_Constraints(
                maxTotalCost: 40, maxTasks: 12, allowedCapabilities: ["http", "llm.summarise", "gpu"],
                forbiddenCapabilities: ["a.forbidden", "z.forbidden"]),
            failurePolicy: .continueIndependent)
        var problems = ProblemList()
        let decoded = DecodedQuery(proto: proto, problems: &problems)
        #expect(problems.isEmpty)
        #expect(decoded.query.text == "investigate fencing tokens")
        #expect(decoded.query.goal == Goal(artifacts: ["reviewed_report", "answer"]))
        #expect(decoded.query.providedInputs == ["urls": "https://example.org"])
        #expect(decoded.query.plannerHint == ExplicitPlanner.defaultName)
        #expect(decoded.query.priority == 7)
        #expect(
            decoded.query.constraints
                == PlanningConstraints(
                    maxTotalCost: 40, maxTasks: 12, excludedCapabilities: ["a.forbidden", "z.forbidden"],
                    allowedCapabilities: ["http", "llm.summarise", "gpu"]))
        #expect(decoded.allowedCapabilities == ["http", "llm.summarise", "gpu"])
        #expect(decoded.failurePolicy == .continueIndependent)
        #expect(decoded.query.explicitGraph?.tasks.count == 3)

        #expect(Orchestrator_V1_Query(decoded) == proto)
        // Stored and read back, the domain query alone keeps the allowed capabilities (sorted).
        var stored = Orchestrator_V1_Query(decoded.query, failurePolicy: decoded.failurePolicy, payloads: decoded.payloads)
        stored.constraints?.allowedCapabilities.sort()
        var expected = proto
        expected.constraints?.allowedCapabilities.sort()
        #expect(stored == expected)
    }

    @Test(arguments: [Orchestrator_V1_PlannerKind.unspecified, .explicit, .catalog, .delegated])
    func plannerKindSurvives(_ kind: Orchestrator_V1_PlannerKind) {
        let proto = Orchestrator_V1_Query(text: "research x", planner: kind, failurePolicy: .failFast)
        var problems = ProblemList()
        let decoded = DecodedQuery(proto: proto, problems: &problems)
        #expect(problems.isEmpty)
        #expect(Orchestrator_V1_Query(decoded).planner == kind)
    }

    @Test func zeroFieldsTakeTheDocumentedDefaults() throws {
        var problems = ProblemList()
        let spec = TaskSpec(
            proto: Orchestrator_V1_TaskSpec(key: "a", retry: Orchestrator_V1_RetryPolicy(), timeouts: Orchestrator_V1_Timeouts()),
            problems: &problems)
        #expect(problems.isEmpty)
        #expect(spec.name == "a")
        #expect(spec.estimatedCost == 1)
        #expect(spec.retry == RetryPolicy(maxAttempts: 3, initialBackoffMillis: 1_000, maxBackoffMillis: 60_000, backoffMultiplier: 2))
        #expect(spec.retryJitter == 0)
        #expect(spec.timeoutSeconds == nil)
        #expect(spec.heartbeatTimeoutSeconds == nil)
        #expect(spec.resources == .none)

        var policyProblems = ProblemList()
        let query = DecodedQuery(proto: Orchestrator_V1_Query(text: "research x"), problems: &policyProblems)
        #expect(query.failurePolicy == .failFast)
        #expect(query.query.plannerHint == nil)
        #expect(query.query.constraints == PlanningConstraints())
    }

    @Test func subSecondTimeoutsRoundUp() {
        var problems = ProblemList()
        let spec = TaskSpec(
            proto: Orchestrator_V1_TaskSpec(key: "a", timeouts: Orchestrator_V1_Timeouts(startToCloseMs: 1_500, leaseTtlMs: 1)),
            problems: &problems)
        #expect(spec.timeoutSeconds == 2)
        #expect(spec.heartbeatTimeoutSeconds == 1)
    }

    @Test func everyFieldProblemIsCollected() {
        let proto = Orchestrator_V1_Query(
            inputs: ["": "x"],
            graph: Orchestrator_V1_Dag(tasks: [
                Orchestrator_V1_TaskSpec(
                    key: "a",
                    resources: Orchestrator_V1_Resources(cpuCores: -1, memoryMb: -2, gpus: -3, custom: ["tokens": 0.5]),
                    retry: Orchestrator_V1_RetryPolicy(
                        maxAttempts: -1, initialBackoffMs: -5, maxBackoffMs: -6, backoffMultiplier: 0.5, jitter: 1.5),
                    timeouts: Orchestrator_V1_Timeouts(startToCloseMs: -1, leaseTtlMs: -1))
            ]),
            planner: .unrecognized(42),
            constraints: Orchestrator_V1_Constraints(
                maxTotalCost: -1, maxTasks: -1, allowedCapabilities: ["x"], forbiddenCapabilities: ["x"]),
            failurePolicy: .unrecognized(9))
        var problems = ProblemList()
        _ = DecodedQuery(proto: proto, problems: &problems)
        let messages = problems.problems.map(\.message)
        #expect(problems.problems.allSatisfy { $0.code == "INVALID_FIELD" })
        for fragment in [
            "resources.cpu_cores is -1.0", "resources.memory_mb is -2", "resources.gpus is -3", "resources.custom[\"tokens\"] is 0.5",
            "retry.max_attempts is -1", "retry.initial_backoff_ms is -5", "retry.max_backoff_ms is -6",
            "retry.backoff_multiplier is 0.5", "retry.jitter is 1.5", "timeouts.start_to_close_ms is -1",
            "timeouts.lease_ttl_ms is -1", "planner is 42", "constraints.max_total_cost is -1.0", "constraints.max_tasks is -1",
            "`x` as both allowed and forbidden", "failure_policy is 9", "inputs has an entry with an empty artifact name",
        ] {
            #expect(messages.contains { $0.contains(fragment) }, "missing: \(fragment) in \(messages)")
        }
        #expect(problems.problems.count == 17)
    }

    /// Both backoffs given out of order: refused, naming both (the cap used to win silently).
    /// One alone below the other's default is what was asked for.
    @Test func anInitialBackoffAboveTheMaximumIsRefusedOnlyWhenBothAreGiven() {
        func problems(initial: Int64, max: Int64) -> [String] {
            var problems = ProblemList()
            _ = TaskSpec(proto: Orchestrator_V1_TaskSpec(key: "a", retry: Orchestrator_V1_RetryPolicy(
                maxAttempts: 3, initialBackoffMs: initial, maxBackoffMs: max)), problems: &problems)
            return problems.problems.map(\.message)
        }
        #expect(problems(initial: 5_000, max: 1_000) == [
            "task `a`: retry.initial_backoff_ms is 5000; it must not exceed retry.max_backoff_ms (1000)"
        ])
        #expect(problems(initial: 1_000, max: 1_000).isEmpty)
        #expect(problems(initial: 0, max: 500).isEmpty)
        // One alone moves the other's default to meet it, so that the stored policy, read back
        // with both fields set, is valid (found by fuzzing).
        func policy(initial: Int64, max: Int64) -> RetryPolicy {
            var ignored = ProblemList()
            return TaskSpec(proto: Orchestrator_V1_TaskSpec(key: "a", retry: Orchestrator_V1_RetryPolicy(
                maxAttempts: 3, initialBackoffMs: initial, maxBackoffMs: max)), problems: &ignored).retry
        }
        let capped = policy(initial: 0, max: 500)
        #expect((capped.initialBackoffMillis, capped.maxBackoffMillis) == (500, 500))
        #expect(problems(initial: 90_000, max: 0).isEmpty)
        let slow = policy(initial: 90_000, max: 0)
        #expect((slow.initialBackoffMillis, slow.maxBackoffMillis) == (90_000, 90_000))
        for stored in [capped, slow] {
            let readBack = Orchestrator_V1_TaskSpec(TaskSpec(key: "a", retry: stored)).retry!
            #expect(problems(initial: readBack.initialBackoffMs, max: readBack.maxBackoffMs).isEmpty)
        }
        let untouched = policy(initial: 0, max: 0)
        #expect((untouched.initialBackoffMillis, untouched.maxBackoffMillis) == (1_000, 60_000))
    }

    @Test func plannerMetadataBecomesTheExecutorPayload() throws {
        let spec = TaskSpec(key: "web_search", metadata: ["input.question": "what is \"h2\"?\n", "description": "search"])
        let proto = Orchestrator_V1_TaskSpec(spec)
        #expect(String(decoding: proto.payload, as: UTF8.self) == #"{"description":"search","input.question":"what is \"h2\"?\n"}"#)
        #expect(proto.description == "search")
        // An explicit payload wins, even an empty one.
        #expect(Orchestrator_V1_TaskSpec(spec, payload: []).payload == [])
    }
}
