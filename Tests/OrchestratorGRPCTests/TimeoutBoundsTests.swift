import OrchestratorAPI
import OrchestratorDomain
import OrchestratorGRPC
import Testing

/// `timeouts` values are bounded: an int64 near its maximum used to overflow the rounding to
/// whole seconds and crash the server (found by FuzzDagValidation; Tests/fuzz/regressions), and a
/// lease TTL over 2^31 − 1 ms broke every claim that met the task ("integer out of range": the
/// column is int4; found by black-box testing). start_to_close: 366 days; lease TTL: 24 days.
@Suite("Mappings: timeout bounds")
struct TimeoutBoundsTests {
    static func decode(_ timeouts: Orchestrator_V1_Timeouts) -> (TaskSpec, ProblemList) {
        var problems = ProblemList()
        let spec = TaskSpec(proto: Orchestrator_V1_TaskSpec(key: "a", timeouts: timeouts), problems: &problems)
        return (spec, problems)
    }

    @Test("values past the bound are invalid fields, not crashes", arguments: [
        Int64.max, Int64.max - 998, APIDefaults.maxTimeoutMillis + 1, Int64.min, -1,
    ])
    func pastTheBound(_ millis: Int64) {
        let (spec, problems) = Self.decode(Orchestrator_V1_Timeouts(startToCloseMs: millis, leaseTtlMs: millis))
        #expect(problems.totalCount == 2)
        #expect(problems.problems.allSatisfy { $0.code == ProblemCode.invalidField.rawValue })
        let messages = problems.problems.map(\.message)
        #expect(messages.contains { $0.contains("start_to_close_ms") && $0.contains("at most 366 days") })
        #expect(messages.contains { $0.contains("lease_ttl_ms") && $0.contains("at most 24 days") })
        #expect(spec.timeoutSeconds == nil && spec.heartbeatTimeoutSeconds == nil)
    }

    @Test("a lease TTL past 24 days is refused though a start_to_close that long is not", arguments: [
        TaskSpec.maxLeaseTTLMillis + 1, 2_147_483_648, APIDefaults.maxTimeoutMillis,
    ])
    func leaseTTLPastItsBound(_ millis: Int64) {
        let (spec, problems) = Self.decode(Orchestrator_V1_Timeouts(startToCloseMs: millis, leaseTtlMs: millis))
        #expect(problems.totalCount == 1)
        #expect(problems.problems.first?.message.contains("timeouts.lease_ttl_ms") == true)
        #expect(spec.heartbeatTimeoutSeconds == nil && spec.timeoutSeconds != nil)
    }

    @Test func theBoundsThemselvesAreAccepted() {
        let (spec, problems) = Self.decode(
            Orchestrator_V1_Timeouts(startToCloseMs: APIDefaults.maxTimeoutMillis, leaseTtlMs: TaskSpec.maxLeaseTTLMillis))
        #expect(problems.isEmpty)
        #expect(spec.timeoutSeconds == 366 * 86_400)
        #expect(spec.heartbeatTimeoutSeconds == 24 * 86_400)
        #expect(spec.leaseTTLMillis == TaskSpec.maxLeaseTTLMillis)
    }

    @Test("a spec stored before the bound (a longer lease TTL) is granted the longest one")
    func storedLongerTTLIsClamped() {
        var spec = TaskSpec(key: "old")
        spec.heartbeatTimeoutSeconds = 366 * 86_400
        #expect(spec.leaseTTLMillis == TaskSpec.maxLeaseTTLMillis)
    }
}
