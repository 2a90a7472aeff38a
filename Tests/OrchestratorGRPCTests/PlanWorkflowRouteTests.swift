import NGRPC
import OrchestratorAPI
import OrchestratorGRPC
import Synchronization
import Testing

/// PlanWorkflow through the generated provider and the router, at the byte level: what a transport
/// would carry (a serialized response, or the status with its details).
@Suite("PlanWorkflow through the router")
struct PlanWorkflowRouteTests {
    /// Implements only PlanWorkflow, the way the Workflows provider forwards it.
    struct PlanningOnlyProvider: Orchestrator_V1_WorkflowsProvider {
        let handler: WorkflowsPlanningHandler

        func planWorkflow(_ request: Orchestrator_V1_PlanWorkflowRequest, context: ServerContext) async throws
            -> Orchestrator_V1_PlanWorkflowResponse
        {
            try handler.planWorkflow(request, context: context)
        }
    }

    /// One queued request, then half-closed.
    final class OneMessage: RawMessageSource {
        let message: Mutex<[UInt8]?>
        init(_ bytes: [UInt8]) { message = Mutex(bytes) }
        func next() async throws -> [UInt8]? {
            message.withLock { value in
                defer { value = nil }; return value
            }
        }
    }

    final class Recorder: RawMessageSink {
        let messages = Mutex<[[UInt8]]>([])
        func sendHeaders(_ metadata: Metadata) async throws {}
        func send(_ message: [UInt8]) async throws { messages.withLock { $0.append(message) } }
    }

    static func call(_ request: Orchestrator_V1_PlanWorkflowRequest) async throws -> Result<[[UInt8]], RPCStatus> {
        var router = RPCRouter()
        PlanningOnlyProvider(handler: try Fixtures.handler()).register(into: &router)
        let route = try #require(router.route(forPath: "/orchestrator.v1.Workflows/PlanWorkflow"))
        let sink = Recorder()
        do {
            try await route.handler(OneMessage(try request.serializedBytes()), sink, Fixtures.context())
            return .success(sink.messages.withLock { $0 })
        } catch let status as RPCStatus {
            return .failure(status)
        }
    }

    @Test func planIsSerialized() async throws {
        let request = Fixtures.graphQuery([Fixtures.task("A"), Fixtures.task("B", ["A"])])
        let messages = try await Self.call(request).get()
        #expect(messages.count == 1)
        let response = try Orchestrator_V1_PlanWorkflowResponse(serializedBytes: messages[0])
        #expect(response.analysis?.topologicalOrder == ["A", "B"])
        #expect(response.planning?.planner == "explicit")
    }

    @Test func rejectionCarriesEveryProblemInTheStatus() async throws {
        let request = Fixtures.graphQuery([Fixtures.task("a", ["b"]), Fixtures.task("b", ["a"]), Fixtures.task("c", ["zz"])])
        guard case .failure(let status) = try await Self.call(request) else {
            Issue.record("an invalid graph was planned")
            return
        }
        #expect(status.code == .invalidArgument)
        #expect(
            status.message
                == "invalid DAG: 2 problems: task `c` depends on unknown task `zz`; cycle: a → b → a (2 tasks); remove one of these dependencies"
        )
        let problems = try #require(status.details.flatMap(StatusDetails.decodeProblems))
        #expect(problems.map(\.code) == ["UNKNOWN_DEPENDENCY", "CYCLE"])
    }
}
