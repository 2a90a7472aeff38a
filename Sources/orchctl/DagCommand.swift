import ArgumentParser
import OrchestratorAPI
import OrchestratorDomain
import OrchestratorGRPC

/// `orchctl dag`: a workflow's graph (any version) as a text tree, Graphviz DOT or Mermaid.
struct DagCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dag", abstract: "Show a workflow's DAG as text, DOT or Mermaid (any version).")

    enum Format: String, ExpressibleByArgument, CaseIterable { case text, dot, mermaid }

    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "Workflow id.") var workflowID: String
    @Option(name: .long, parsing: .unconditional, help: "DAG version (default: current). Here --version takes a number; `orchctl --version` prints the release.") var version: Int32 = 0
    @Option(name: .long, help: "text, dot or mermaid.") var format: Format = .text

    func validate() throws {
        guard version >= 0 else { throw ValidationError("--version must be a DAG version (1 or more), or 0 for the current one; not \(version)") }
    }

    func run() async throws {
        var request = Orchestrator_V1_GetDagRequest()
        request.workflowID = workflowID
        request.version = version
        try await withConnection(connection) { connection in
            let response = try await connection.workflows.getDag(request, options: connection.callOptions())
            guard let dag = response.dag else { throw CLIError("server returned no DAG") }
            switch format {
            case .text:
                Output.line(Render.dagTree(dag))
                let states = Dictionary(response.tasks.compactMap { task in task.spec.map { ($0.key, task.state) } }, uniquingKeysWith: { a, _ in a })
                if !states.isEmpty {
                    Output.line("states: " + dag.tasks.map { "\($0.key)=\(Render.taskState(states[$0.key] ?? .unspecified))" }.joined(separator: " "))
                }
                Output.line("versions: " + response.versions.map { "v\($0.version) (\(Render.oneLine($0.reason)))" }.joined(separator: ", "))
            case .dot, .mermaid:
                var problems = ProblemList()
                let decoded = DecodedDag(proto: dag, problems: &problems)
                let validated: ValidatedDag
                do {
                    validated = try DagValidator().validate(decoded.dag)
                } catch {
                    throw CLIError("the stored DAG does not validate: \(error)")
                }
                let critical = GraphAnalysis(validated).criticalPath
                Output.line(format == .dot ? DotExport.render(validated, criticalPath: critical, name: workflowID) : MermaidExport.render(validated, criticalPath: critical))
            }
        }
    }
}
