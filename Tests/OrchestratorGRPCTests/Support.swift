import Foundation
import Logging
import NGRPC
import OrchestratorAPI
import OrchestratorApp
import OrchestratorDomain
import OrchestratorGRPC
import Synchronization

enum Fixtures {
    /// The repository root, found from this file's path (Tests/OrchestratorGRPCTests/…).
    static var repositoryRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    static func agentTeamCatalog() throws -> CapabilityCatalog {
        try PlannerSetup.loadCatalog(path: repositoryRoot.appendingPathComponent(PlannerSetup.defaultCatalogPath).path)
    }

    /// The handler as the server builds it: explicit, catalog (the sample catalog) and delegated.
    static func handler(logger: Logger = Logger(label: "test")) throws -> WorkflowsPlanningHandler {
        let catalog = try agentTeamCatalog()
        let registry = PlannerRegistry([ExplicitPlanner(), CatalogPlanner(catalog: catalog), DelegatedPlanner()])
        return WorkflowsPlanningHandler(registry: registry, catalog: catalog, clock: FixedClock(instant: 1_700_000_000_000), logger: logger)
    }

    static func context() -> ServerContext {
        ServerContext(
            method: Orchestrator_V1_WorkflowsMethods.planWorkflow, requestMetadata: Metadata(), deadline: nil,
            trace: TraceContext.start(), peer: "test")
    }

    /// A task spec with only a key and dependencies.
    static func task(_ key: String, _ dependsOn: [String] = [], cost: Double = 0) -> Orchestrator_V1_TaskSpec {
        Orchestrator_V1_TaskSpec(key: key, dependsOn: dependsOn, estimatedCost: cost)
    }

    static func graphQuery(_ tasks: [Orchestrator_V1_TaskSpec], planner: Orchestrator_V1_PlannerKind = .unspecified)
        -> Orchestrator_V1_PlanWorkflowRequest
    {
        Orchestrator_V1_PlanWorkflowRequest(query: Orchestrator_V1_Query(graph: Orchestrator_V1_Dag(tasks: tasks), planner: planner))
    }

    /// Runs PlanWorkflow and returns the status it failed with (nil on success).
    static func failure(_ request: Orchestrator_V1_PlanWorkflowRequest) throws -> RPCStatus? {
        let handler = try handler()
        do {
            _ = try handler.planWorkflow(request, context: context())
            return nil
        } catch {
            return error
        }
    }
}

struct FixedClock: WallClock {
    var instant: UnixMillis
    func now() -> UnixMillis { instant }
}

/// Keeps every log message, so tests can see what the edge logged (and what it did not send).
final class CapturedLogs: Sendable {
    let messages = Mutex<[String]>([])

    var all: [String] { messages.withLock { $0 } }

    func logger() -> Logger {
        Logger(label: "captured") { _ in Handler(box: self) }
    }

    struct Handler: LogHandler {
        let box: CapturedLogs
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            let fields = (event.metadata ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
            box.messages.withLock { $0.append(([event.message.description] + fields).joined(separator: " ")) }
        }
    }
}
