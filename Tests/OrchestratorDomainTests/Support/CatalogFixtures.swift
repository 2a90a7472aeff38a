import Foundation
import OrchestratorDomain

enum CatalogFixtures {
    /// The repository root, found from this file's path (Tests/OrchestratorDomainTests/Support/…).
    static var repositoryRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent()
    }

    static func agentTeam() throws -> CapabilityCatalog {
        let data = try Data(contentsOf: repositoryRoot.appendingPathComponent("examples/catalogs/agent-team.json"))
        return try CapabilityCatalog.decodeJSON(Array(data))
    }

    /// A catalog whose cheapest plan for the sinks' outputs is exactly `dag`: each task becomes a
    /// capability consuming its upstream tasks' outputs (sources consume the query text) and producing
    /// `out-<key>`.
    static func catalog(mirroring dag: Dag) throws -> (CapabilityCatalog, goals: [String]) {
        var upstream: [TaskKey: [TaskKey]] = [:]
        var hasSuccessor = Set<TaskKey>()
        for edge in dag.edges {
            upstream[edge.to, default: []].append(edge.from)
            hasSuccessor.insert(edge.from)
        }
        let capabilities = dag.tasks.map { task in
            CatalogCapability(
                name: task.key.rawValue,
                consumes: upstream[task.key].map { $0.map { "out-\($0)" } } ?? ["question"],
                produces: ["out-\(task.key)"], cost: task.estimatedCost, executorCapability: "worker")
        }
        let goals = dag.tasks.filter { !hasSuccessor.contains($0.key) }.map { "out-\($0.key)" }
        return (try CapabilityCatalog(name: "mirror", implicitInputs: ["question"], capabilities: capabilities), goals)
    }
}
