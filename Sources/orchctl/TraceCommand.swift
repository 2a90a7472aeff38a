import ArgumentParser
import NGRPC
import OrchestratorAPI

struct TraceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trace",
        abstract: "Show a workflow's timeline (a waterfall built from its event log) and its trace id.",
        discussion: """
            One row for submission and planning, one per task (offset from the workflow's first \
            event, duration, a bar scaled to the terminal, attempts and executors), one for the end. \
            The trace id is the one spans were exported under: look it up in your tracing backend.
            """)

    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "Workflow id.") var workflowID: String
    @Flag(name: .long, help: "Print the timeline as JSON.") var json = false
    @Option(name: .long, parsing: .unconditional, help: "Line width (default: the terminal's, else $COLUMNS, else 100).") var width: Int?

    func validate() throws {
        if let width, width < 1 { throw ValidationError("--width must be a number of columns above 0, not \(width)") }
    }

    func run() async throws {
        try await withConnection(connection) { connection in
            var get = Orchestrator_V1_GetWorkflowRequest()
            get.workflowID = workflowID
            let response = try await connection.workflows.getWorkflow(get, options: connection.callOptions())
            guard let workflow = response.workflow else { throw CLIError("server returned no workflow") }
            let events = try await Self.events(of: workflowID, connection)
            let timeline = Timeline(workflow: workflow, events: events)
            if json {
                Output.line(try TimelineRender.json(timeline))
            } else {
                Output.line(TimelineRender.text(timeline, width: width ?? TimelineRender.terminalWidth()))
            }
        }
    }

    /// Every event of the workflow, page by page.
    static func events(of workflowID: String, _ connection: Connection) async throws -> [Orchestrator_V1_WorkflowEvent] {
        var events: [Orchestrator_V1_WorkflowEvent] = []
        var request = Orchestrator_V1_ListEventsRequest()
        request.workflowID = workflowID
        request.pageSize = 1000
        while true {
            let page = try await connection.workflows.listEvents(request, options: connection.callOptions())
            events += page.events
            if page.nextPageToken.isEmpty || page.events.isEmpty { return events }
            request.pageToken = page.nextPageToken
        }
    }
}
