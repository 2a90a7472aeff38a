import NGRPC
import OrchestratorApp
import OrchestratorAPI
import Testing
@testable import OrchestratorGRPC

@Suite struct StringLengthGuardTests {
    let guardrail = StringLengthGuard(maxBytes: 16)
    let submit = "/orchestrator.v1.Workflows/SubmitQuery"

    func request(_ edit: (inout Orchestrator_V1_SubmitQueryRequest) -> Void) throws -> [UInt8] {
        var task = Orchestrator_V1_TaskSpec()
        task.key = "a"
        task.name = "short"
        var dag = Orchestrator_V1_Dag()
        dag.tasks = [task]
        var query = Orchestrator_V1_Query()
        query.graph = dag
        query.planner = .explicit
        var request = Orchestrator_V1_SubmitQueryRequest()
        request.requestID = "r-1"
        request.query = query
        edit(&request)
        return try request.serializedBytes()
    }

    /// Found by black-box testing: 2 million empty TaskSpecs (2 bytes each on the wire) took
    /// 1.8 GB and seconds to decode before validation refused the count. The guard counts entries
    /// of each repeated message field on the wire, before anything is decoded.
    @Test func repeatedMessageFieldsAreBoundedBeforeDecoding() throws {
        let bounded = StringLengthGuard(maxBytes: 16, maxEntries: 3, maxEdgeEntries: 5)
        let three = try request { $0.query!.graph!.tasks = (0..<3).map { Orchestrator_V1_TaskSpec(key: "t\($0)") } }
        #expect(bounded.check(three, path: submit) == nil)
        let four = try request { $0.query!.graph!.tasks = (0..<4).map { Orchestrator_V1_TaskSpec(key: "t\($0)") } }
        let violation = try #require(bounded.check(four, path: submit))
        #expect(violation.isEntryCount && violation.field == "orchestrator.v1.Dag.tasks" && violation.limit == 3)
        #expect(violation.description == "field orchestrator.v1.Dag.tasks has more than 3 entries; the limit (max-dag-tasks, or max-dag-edges for edges) is 3")
        // Empty entries count: two bytes each on the wire.
        let empties = try request { $0.query!.graph!.tasks = Array(repeating: Orchestrator_V1_TaskSpec(), count: 4) }
        #expect(bounded.check(empties, path: submit)?.isEntryCount == true)
        // Edges have their own limit.
        var update = Orchestrator_V1_UpdateDagRequest()
        update.addEdges = (0..<5).map { Orchestrator_V1_Edge(upstream: "a\($0)", downstream: "b") }
        let path = "/orchestrator.v1.Workflows/UpdateDag"
        #expect(bounded.check(try update.serializedBytes(), path: path) == nil)
        update.addEdges.append(Orchestrator_V1_Edge(upstream: "a", downstream: "c"))
        #expect(bounded.check(try update.serializedBytes(), path: path)?.field == "orchestrator.v1.UpdateDagRequest.add_edges")
    }

    @Test func requestWithinTheLimitPasses() throws {
        #expect(guardrail.check(try request { _ in }, path: submit) == nil)
        // Exactly at the limit.
        #expect(guardrail.check(try request { $0.requestID = String(repeating: "x", count: 16) }, path: submit) == nil)
    }

    @Test func topLevelStringOverTheLimit() throws {
        let violation = guardrail.check(try request { $0.requestID = String(repeating: "x", count: 17) }, path: submit)
        #expect(violation == StringLengthGuard.Violation(field: "orchestrator.v1.SubmitQueryRequest.request_id", length: 17, limit: 16))
    }

    @Test func nestedTaskFieldsAndMapValuesAreChecked() throws {
        let description = guardrail.check(
            try request { $0.query!.graph!.tasks[0].description = String(repeating: "d", count: 40) }, path: submit)
        #expect(description?.field == "orchestrator.v1.TaskSpec.description")
        let label = guardrail.check(
            try request { $0.query!.graph!.tasks[0].labels["team"] = String(repeating: "v", count: 20) }, path: submit)
        #expect(label?.field == "orchestrator.v1.TaskSpec.LabelsEntry.value")
        let capability = guardrail.check(
            try request { $0.query!.graph!.tasks[0].requiredCapabilities = ["ok", String(repeating: "c", count: 17)] }, path: submit)
        #expect(capability?.length == 17)
    }

    /// Our Swift messages cannot carry U+0000 (protobuf-c strings are NUL-terminated), so the
    /// request is serialized with a marker byte that is then turned into 0x00, as another
    /// language's client would send it.
    private func withNUL(replacing marker: UInt8, in bytes: [UInt8]) -> [UInt8] {
        var patched = bytes
        let index = patched.firstIndex(of: marker)!
        patched[index] = 0
        return patched
    }

    @Test func stringsContainingNULAreRefusedWhereverTheyAre() throws {
        let key = guardrail.check(withNUL(replacing: UInt8(ascii: "~"), in: try request { $0.query!.graph!.tasks[0].key = "a~b" }), path: submit)
        #expect(key == StringLengthGuard.Violation(field: "orchestrator.v1.TaskSpec.key", length: 3, limit: 16, containsNUL: true))
        #expect(key?.description == "field orchestrator.v1.TaskSpec.key contains the character U+0000 (NUL), which strings here cannot hold; remove it")
        let label = guardrail.check(
            withNUL(replacing: UInt8(ascii: "~"), in: try request { $0.query!.graph!.tasks[0].labels["team"] = "v~" }), path: submit)
        #expect(label?.field == "orchestrator.v1.TaskSpec.LabelsEntry.value" && label?.containsNUL == true)
        // bytes fields may hold anything.
        let payload = guardrail.check(
            withNUL(replacing: UInt8(ascii: "~"), in: try request { $0.query!.graph!.tasks[0].payload = Array("x~y".utf8) }), path: submit)
        #expect(payload == nil)
    }

    @Test func executorRequestsAreCovered() throws {
        var hello = Orchestrator_V1_HeartbeatRequest()
        hello.executorID = String(repeating: "e", count: 30)
        let violation = guardrail.check(try hello.serializedBytes(), path: "/orchestrator.v1.Executors/Heartbeat")
        #expect(violation?.field == "orchestrator.v1.HeartbeatRequest.executor_id")
        #expect(violation?.description == "field orchestrator.v1.HeartbeatRequest.executor_id is 30 bytes long; the limit (max-string-length) is 16 bytes")
    }

    @Test func otherServicesAndMalformedBytesAreLeftAlone() {
        #expect(!guardrail.covers(path: "/grpc.health.v1.Health/Check"))
        #expect(guardrail.check([0x0A, 0x7F, 0x01], path: submit) == nil)
    }
}

/// A delegated planner's result is a serialized Dag inside a report, not a request: its strings
/// are held to the same rules before it is decoded (found by black-box testing: a capability
/// "no\0cap" was adopted as "no", and a 1 MB description went in unchecked).
@Suite struct ProposedGraphStringTests {
    let decoder = ProposedGraphDecoding.decoder(strings: StringLengthGuard(maxBytes: 16))

    /// `Dag { tasks: [TaskSpec { key: "a", <field>: <value> }] }` on the wire, written by hand:
    /// protobuf-c's encoder would stop at a NUL itself.
    static func dag(field: UInt8, value: [UInt8]) -> [UInt8] {
        let task: [UInt8] = [0x0A, 1, UInt8(ascii: "a"), field << 3 | 2, UInt8(value.count)] + value
        return [2 << 3 | 2, UInt8(task.count)] + task
    }

    @Test func aPlainResultIsDecoded() throws {
        let graph = try decoder(Self.dag(field: 5, value: Array("gpu".utf8)))
        #expect(graph.dag.tasks.map(\.requiredCapabilities) == [["gpu"]])
    }

    @Test func aNulInAStringRefusesThePlan() {
        let error = #expect(throws: ProposalDecodingError.self) { try decoder(Self.dag(field: 5, value: Array("no\0cap".utf8))) }
        #expect(error?.problems == [
            "field orchestrator.v1.TaskSpec.required_capabilities contains the character U+0000 (NUL), which strings here cannot hold; remove it"
        ])
    }

    @Test func aStringOverTheLimitRefusesThePlan() {
        let error = #expect(throws: ProposalDecodingError.self) {
            try decoder(Self.dag(field: 3, value: Array(repeating: UInt8(ascii: "d"), count: 40)))
        }
        #expect(error?.problems.first?.contains("orchestrator.v1.TaskSpec.description is 40 bytes long") == true)
    }
}
