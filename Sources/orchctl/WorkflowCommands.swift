import ArgumentParser
import Foundation
import NGRPC
import OrchestratorAPI

/// Builds a query from free text, goals, inputs and an optional DAG file.
struct QueryOptions: ParsableArguments {
    @Argument(help: "The query text, e.g. \"research HTTP/2 and write a summary\".")
    var text: String = ""

    @Option(name: .long, help: "JSON DAG file (explicit graph); see docs/CLI.md for the format.")
    var dag: String?

    @Option(name: .long, parsing: .upToNextOption, help: "Goal artifacts (catalog planner).")
    var goal: [String] = []

    @Option(name: .long, parsing: .upToNextOption, help: "Provided inputs as name=value.")
    var input: [String] = []

    @Option(name: .long, help: "Planner: explicit, catalog or delegated (default: chosen by the server).")
    var planner: String?

    @Option(name: .long, help: "Default task priority (higher runs first).")
    var priority: Int32 = 0

    @Option(name: .long, parsing: .upToNextOption, help: "Labels as key=value.")
    var label: [String] = []

    @Flag(name: .long, help: "Let independent branches finish when a task fails (default: fail fast).")
    var continueOnFailure = false

    func query() throws -> Orchestrator_V1_Query {
        var query = Orchestrator_V1_Query()
        query.text = text
        query.goals = goal
        query.inputs = try pairs(input, "--input")
        query.labels = try pairs(label, "--label")
        query.priority = priority
        if let dag { query.graph = try DagFile.load(dag) }
        switch planner?.lowercased() {
        case nil: break
        case "explicit": query.planner = .explicit
        case "catalog": query.planner = .catalog
        case "delegated": query.planner = .delegated
        case let other?: throw ValidationError("unknown planner \"\(other)\" (explicit, catalog or delegated)")
        }
        query.failurePolicy = continueOnFailure ? .continueIndependent : .failFast
        if query.text.isEmpty, query.goals.isEmpty, query.graph == nil {
            throw ValidationError("give query text, --goal or --dag")
        }
        return query
    }

    func pairs(_ items: [String], _ flag: String) throws -> [String: String] {
        var result: [String: String] = [:]
        for item in items {
            guard let equals = item.firstIndex(of: "=") else { throw ValidationError("\(flag) \"\(item)\" is not key=value") }
            guard equals != item.startIndex else { throw ValidationError("\(flag) \"\(item)\" has an empty key") }
            result[String(item[..<equals])] = String(item[item.index(after: equals)...])
        }
        return result
    }
}

struct SubmitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "submit", abstract: "Plan a query, store it and start it.")

    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var queryOptions: QueryOptions

    @Option(name: .long, help: "Idempotency key: resubmitting with the same id returns the same workflow.")
    var requestId: String?

    @Flag(name: .long, help: "Wait for the workflow to finish (within --timeout); exit 3 unless it succeeded.")
    var wait = false

    @Flag(name: .long, help: "After submitting, follow the workflow's events until it finishes; exit 3 unless it succeeded.")
    var watch = false

    func run() async throws {
        var request = Orchestrator_V1_SubmitQueryRequest()
        request.query = try queryOptions.query()
        // With --wait, a key of our own: if the wait runs out, the same key (without the wait)
        // names the workflow already stored, which the deadline's error alone never did.
        request.requestID = requestId ?? (wait ? "orchctl-" + UUID().uuidString.lowercased() : "")
        request.wait = wait
        try await withConnection(connection) { connection in
            let response: Orchestrator_V1_SubmitQueryResponse
            do {
                response = try await connection.workflows.submitQuery(request, options: connection.callOptions())
            } catch let status as RPCStatus where wait && status.code == .deadlineExceeded {
                request.wait = false
                if let stored = try? await connection.workflows.submitQuery(request, options: connection.callOptions()).workflow {
                    Output.line("submitted " + Render.workflowSummary(stored))
                }
                throw status
            }
            guard let workflow = response.workflow else { throw CLIError("server returned no workflow") }
            Output.line((response.created ? "submitted " : "already submitted ") + Render.workflowSummary(workflow))
            if let dag = response.dag { Output.line(Render.dagTree(dag)) }
            var finalState = workflow.state
            if watch {
                try await WatchCommand.follow(connection, workflowID: workflow.workflowID, after: 0, untilFinished: true)
                var get = Orchestrator_V1_GetWorkflowRequest()
                get.workflowID = workflow.workflowID
                finalState = try await connection.workflows.getWorkflow(get, options: connection.callOptions()).workflow?.state ?? finalState
            }
            // A script waiting for the workflow learns how it ended from the exit status.
            if (wait || watch) && finalState != .succeeded {
                Output.note("workflow \(workflow.workflowID) ended \(Render.state(finalState))")
                throw ExitCode(Self.workflowDidNotSucceed)
            }
        }
    }

    /// `submit --wait` / `--watch`: the calls worked, the workflow ended other than SUCCEEDED.
    static let workflowDidNotSucceed: Int32 = 3
}

struct PlanCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "plan", abstract: "Plan and validate a query without storing it.")

    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var queryOptions: QueryOptions

    func run() async throws {
        var request = Orchestrator_V1_PlanWorkflowRequest()
        request.query = try queryOptions.query()
        try await withConnection(connection) { connection in
            let response = try await connection.workflows.planWorkflow(request, options: connection.callOptions())
            if let planning = response.planning {
                Output.line("planner \(planning.planner) in \(planning.durationUs) µs, total cost \(planning.totalCost)")
                if !planning.rationale.isEmpty { Output.line(planning.rationale) }
            }
            if let dag = response.dag { Output.line(Render.dagTree(dag)) }
            if let analysis = response.analysis {
                Output.line("critical path (\(analysis.criticalPathCost)): \(analysis.criticalPath.joined(separator: " → "))")
                Output.line("levels: " + analysis.levels.map { "[" + $0.taskKeys.joined(separator: ", ") + "]" }.joined(separator: " "))
            }
        }
    }
}

struct GetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "get", abstract: "Show a workflow and its tasks.")

    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "Workflow id.") var workflowID: String

    func run() async throws {
        var request = Orchestrator_V1_GetWorkflowRequest()
        request.workflowID = workflowID
        try await withConnection(connection) { connection in
            let response = try await connection.workflows.getWorkflow(request, options: connection.callOptions())
            guard var workflow = response.workflow else { throw CLIError("server returned no workflow") }
            do {
                workflow.tasks = try await Self.tasks(of: workflow.workflowID, connection: connection)
            } catch let status as RPCStatus where status.code == .unimplemented {
                // A server before ListTasks (0.2.0): every task in one answer.
                request.includeTasks = true
                let whole = try await connection.workflows.getWorkflow(request, options: connection.callOptions())
                workflow = whole.workflow ?? workflow
            }
            Output.line(Render.workflowDetail(workflow))
        }
    }

    /// Every task of the workflow, a ListTasks page at a time, results left out (not shown): a
    /// workflow of any size, whatever its results weigh.
    static func tasks(of workflowID: String, connection: Connection) async throws -> [Orchestrator_V1_Task] {
        var tasks: [Orchestrator_V1_Task] = []
        var page = Orchestrator_V1_ListTasksRequest()
        page.workflowID = workflowID
        page.pageSize = 1000
        page.omitResults = true
        repeat {
            let response = try await connection.workflows.listTasks(page, options: connection.callOptions())
            tasks += response.tasks
            page.pageToken = response.nextPageToken
        } while !page.pageToken.isEmpty
        return tasks
    }
}

struct ListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List workflows, newest first.")

    @OptionGroup var connection: ConnectionOptions
    @Option(name: .long, help: "Only this state: running, succeeded, failed, cancelled, planning.") var state: String?
    @Option(name: .long, parsing: .upToNextOption, help: "Only workflows with these labels (key=value).") var label: [String] = []
    @Option(name: .long, parsing: .unconditional, help: "How many workflows to show (read in pages of up to 1000).") var limit: Int32 = 50
    @Option(name: .long, help: "Page token from a previous list.") var pageToken: String?

    /// The largest page ListWorkflows serves.
    static let maxPageSize: Int32 = 1000

    func run() async throws {
        guard limit > 0 else { throw ValidationError("--limit must be > 0") }
        var request = Orchestrator_V1_ListWorkflowsRequest()
        request.pageToken = pageToken ?? ""
        request.labels = try QueryOptions().pairs(label, "--label")
        if let state {
            switch state.lowercased() {
            case "planning": request.states = [.planning]
            case "running": request.states = [.running]
            case "succeeded": request.states = [.succeeded]
            case "failed": request.states = [.failed]
            case "cancelled": request.states = [.cancelled]
            default: throw ValidationError("unknown state \"\(state)\" (one of: planning, running, succeeded, failed, cancelled)")
            }
        }
        try await withConnection(connection) { connection in
            // The server's pages hold at most 1000; a larger --limit reads as many as it takes.
            var left = limit
            while true {
                request.pageSize = min(left, Self.maxPageSize)
                let response = try await connection.workflows.listWorkflows(request, options: connection.callOptions())
                for workflow in response.workflows { Output.line(Render.workflowSummary(workflow)) }
                left -= Int32(response.workflows.count)
                guard !response.nextPageToken.isEmpty else { return }
                guard left > 0, !response.workflows.isEmpty else {
                    // On standard error: standard output is the list alone, one workflow per line,
                    // for pipelines (`| tail -1 | awk …` picked up "more:" as a workflow id).
                    Output.note("more: --page-token \(response.nextPageToken)")
                    return
                }
                request.pageToken = response.nextPageToken
            }
        }
    }
}

struct WatchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "watch", abstract: "Follow a workflow's events live.")

    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "Workflow id (omit to watch every workflow you may see).") var workflowID: String = ""
    @Option(name: .long, parsing: .unconditional, help: "Resume after this event sequence number.") var after: Int64 = 0
    @Flag(name: .long, help: "Keep watching after the workflow finished.") var follow = false

    func run() async throws {
        guard after >= 0 else { throw ValidationError("--after must be >= 0") }
        try await withConnection(connection) { connection in
            try await Self.follow(connection, workflowID: workflowID, after: after, untilFinished: !follow && !workflowID.isEmpty)
        }
    }

    static func follow(_ connection: Connection, workflowID: String, after: Int64, untilFinished: Bool) async throws {
        var request = Orchestrator_V1_WatchWorkflowRequest()
        request.workflowID = workflowID
        request.afterSequence = after
        request.stopWhenFinished = untilFinished
        // No deadline unless one was given: a watch follows until the workflow finishes.
        let options = connection.callOptions(timeout: connection.options.timeout ?? 0)
        let events = try await connection.workflows.watchWorkflow(request, options: options)
        for try await event in events {
            // Watching every workflow, each line says whose event it is (as `orchctl events` does).
            Output.line(Render.event(event) + (workflowID.isEmpty ? "  workflow=\(event.workflowID)" : ""))
        }
    }
}

struct CancelCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "cancel", abstract: "Cancel a workflow and revoke its leases.")

    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "Workflow id.") var workflowID: String
    @Option(name: .long, help: "Why (recorded in the event log).") var reason: String = "cancelled with orchctl"

    func run() async throws {
        var request = Orchestrator_V1_CancelWorkflowRequest()
        request.workflowID = workflowID
        request.reason = reason
        try await withConnection(connection) { connection in
            let response = try await connection.workflows.cancelWorkflow(request, options: connection.callOptions())
            if let workflow = response.workflow { Output.line("cancelled " + Render.workflowSummary(workflow)) }
        }
    }
}
