import OrchestratorAPI
import OrchestratorDomain
import OrchestratorGRPC
import Testing

/// `timeouts` values are bounded (366 days): an int64 near its maximum used to overflow the rounding
/// to whole seconds and crash the server (found by FuzzDagValidation; Tests/fuzz/regressions).
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
        #expect(problems.problems.map(\.message).allSatisfy { $0.contains("at most 366 days") })
        #expect(spec.timeoutSeconds == nil && spec.heartbeatTimeoutSeconds == nil)
    }

    @Test func theBoundItselfIsAccepted() {
        let (spec, problems) = Self.decode(
            Orchestrator_V1_Timeouts(startToCloseMs: APIDefaults.maxTimeoutMillis, leaseTtlMs: APIDefaults.maxTimeoutMillis - 1))
        #expect(problems.isEmpty)
        #expect(spec.timeoutSeconds == 366 * 86_400)
        #expect(spec.heartbeatTimeoutSeconds == 366 * 86_400)
    }
}
