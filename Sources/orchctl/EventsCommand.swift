import ArgumentParser
import Foundation
import NGRPC
import OrchestratorAPI

/// `orchctl events`: reads the audit trail (ListEvents), oldest first, paging until `--limit`.
struct EventsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "events",
        abstract: "Read the audit trail: who changed what, when, with which trace id (oldest first).")

    @OptionGroup var connection: ConnectionOptions
    @Option(name: .long, help: "Only this workflow's events.") var workflow: String?
    @Option(name: .long, help: "Only events caused by this subject (the caller's identity).") var actor: String?
    @Option(name: .long, help: "Only this event type, e.g. task_succeeded or WORKFLOW_CANCELLED (repeatable).") var type: [String] = []
    @Option(name: .long, help: "Only events at or after this instant (RFC 3339, e.g. 2026-11-26T01:00:00Z).") var since: String?
    @Option(name: .long, help: "Only events before this instant (RFC 3339).") var until: String?
    @Option(name: .long, help: "Only this tenant's workflows (administrators of every tenant).") var tenant: String?
    @Option(name: .long, parsing: .unconditional, help: "Only events after this sequence number.") var after: Int64 = 0
    @Option(name: .long, parsing: .unconditional, help: "Most events to print (pages through the server's 1000-event pages).") var limit: Int = 100
    @Flag(name: .long, help: "One JSON object per line (JSON Lines) instead of text.") var json = false

    func run() async throws {
        guard limit > 0 else { throw ValidationError("--limit must be > 0") }
        guard after >= 0 else { throw ValidationError("--after must be >= 0") }
        var request = Orchestrator_V1_ListEventsRequest()
        request.workflowID = workflow ?? ""
        request.actorSubject = actor ?? ""
        request.types = try type.map(Self.eventType)
        request.sinceUnixMs = try since.map { try Self.instant($0, "--since") } ?? 0
        request.untilUnixMs = try until.map { try Self.instant($0, "--until") } ?? 0
        request.tenant = tenant ?? ""
        request.afterSequence = after
        try await withConnection(connection) { connection in
            var printed = 0
            while printed < limit {
                request.pageSize = Int32(min(limit - printed, 1000))
                let page = try await connection.workflows.listEvents(request, options: connection.callOptions())
                for event in page.events {
                    Output.line(json ? try Self.jsonLine(event) : Self.text(event))
                }
                printed += page.events.count
                if page.nextPageToken.isEmpty || page.events.isEmpty { break }
                request.pageToken = page.nextPageToken
            }
        }
    }

    /// The text form: `Render.event` plus who did it and the call's trace id.
    static func text(_ event: Orchestrator_V1_WorkflowEvent) -> String {
        var line = Render.event(event) + "  workflow=\(event.workflowID)"
        if let actor = event.actor {
            line += "  by \(Render.oneLine(actor.subject)) (\(Render.oneLine(actor.role)), tenant \(Render.oneLine(actor.tenant)))"
        } else {
            line += "  by server"
        }
        if !event.requestTraceID.isEmpty { line += "  trace=\(event.requestTraceID)" }
        return line
    }

    static func jsonLine(_ event: Orchestrator_V1_WorkflowEvent) throws -> String {
        var object: [String: Any] = [
            "sequence": event.sequence, "workflow_id": event.workflowID, "type": Render.eventName(event.type),
            "at": rfc3339(event.atUnixMs), "at_unix_ms": event.atUnixMs, "message": event.message, "trace_id": event.traceID,
            "request_trace_id": event.requestTraceID,
        ]
        if !event.taskID.isEmpty { object["task_id"] = event.taskID }
        if !event.taskKey.isEmpty { object["task_key"] = event.taskKey }
        if event.attempt > 0 { object["attempt"] = event.attempt }
        if !event.executorID.isEmpty { object["executor_id"] = event.executorID }
        if event.dagVersion > 0 { object["dag_version"] = event.dagVersion }
        // JSON has no NaN (stored before the server clamped it): null then.
        if event.type == .taskProgress { object["progress"] = event.progress.isFinite ? event.progress : NSNull() }
        object["actor"] = event.actor.map { ["subject": $0.subject, "role": $0.role, "tenant": $0.tenant] } ?? NSNull()
        let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
        return String(decoding: data, as: UTF8.self)
    }

    /// Accepts `task_succeeded`, `TASK_SUCCEEDED`, `EVENT_TYPE_TASK_SUCCEEDED` or `task-succeeded`.
    static func eventType(_ name: String) throws -> Orchestrator_V1_EventType {
        var wanted = name.uppercased().replacingOccurrences(of: "-", with: "_")
        if wanted.hasPrefix("EVENT_TYPE_") { wanted.removeFirst("EVENT_TYPE_".count) }
        var known: [String] = []
        for number in Int32(1)..<64 {
            let type = Orchestrator_V1_EventType(rawValue: number)
            if case .unrecognized = type { break }
            let typeName = Render.eventName(type)
            if typeName == wanted { return type }
            known.append(typeName.lowercased())
        }
        throw ValidationError("unknown event type \"\(name)\" (one of: \(known.joined(separator: ", ")))")
    }

    static func instant(_ text: String, _ flag: String) throws -> Int64 {
        guard let millis = RFC3339.unixMillis(text) else {
            throw ValidationError("\(flag) \"\(text)\" is not an RFC 3339 instant (e.g. 2026-11-26T01:00:00Z)")
        }
        return millis
    }

    static func rfc3339(_ millis: Int64) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: Date(timeIntervalSince1970: Double(millis) / 1000))
    }
}
