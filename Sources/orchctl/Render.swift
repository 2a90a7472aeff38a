import Foundation
import OrchestratorAPI
import OrchestratorDomain

/// Human-readable renderings of API messages for the terminal.
enum Render {
    static func state(_ state: Orchestrator_V1_WorkflowState) -> String {
        switch state {
        case .planning: "PLANNING"
        case .running: "RUNNING"
        case .succeeded: "SUCCEEDED"
        case .failed: "FAILED"
        case .cancelled: "CANCELLED"
        default: "UNSPECIFIED"
        }
    }

    static func taskState(_ state: Orchestrator_V1_TaskState) -> String {
        switch state {
        case .pending: "pending"
        case .ready: "ready"
        case .leased: "leased"
        case .running: "running"
        case .succeeded: "succeeded"
        case .failed: "failed"
        case .cancelled: "cancelled"
        case .skipped: "skipped"
        case .retryWait: "retry-wait"
        default: "unspecified"
        }
    }

    static func time(_ unixMillis: Int64) -> String {
        guard unixMillis > 0 else { return "-" }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: Date(timeIntervalSince1970: Double(unixMillis) / 1000))
    }

    static func workflowSummary(_ workflow: Orchestrator_V1_Workflow) -> String {
        let counts = workflow.counts ?? Orchestrator_V1_TaskCounts()
        return "\(workflow.workflowID)  \(state(workflow.state))  v\(workflow.currentDagVersion)  "
            + "tasks \(counts.succeeded)/\(counts.total) done"
            + (counts.failed > 0 ? ", \(counts.failed) failed" : "")
            + (counts.running + counts.leased > 0 ? ", \(counts.running + counts.leased) running" : "")
            + "  created \(time(workflow.createdUnixMs))"
    }

    static func workflowDetail(_ workflow: Orchestrator_V1_Workflow) -> String {
        var lines = [workflowSummary(workflow)]
        lines.append("  trace     \(workflow.traceID)")
        if !workflow.requestID.isEmpty { lines.append("  request   \(workflow.requestID)") }
        if let planning = workflow.planning {
            lines.append("  planner   \(planning.planner) (\(planning.durationUs) µs): \(oneLine(planning.rationale))")
        }
        if !workflow.error.isEmpty { lines.append("  error     \(oneLine(workflow.error))") }
        for task in workflow.tasks {
            let key = task.spec?.key ?? task.taskID
            var line = "  - \(key.padding(toLength: max(key.count, 24), withPad: " ", startingAt: 0)) \(taskState(task.state))"
            if task.attempt > 0 { line += "  attempt \(task.attempt)/\(task.maxAttempts)" }
            if !task.leaseOwner.isEmpty, task.state == .leased || task.state == .running { line += "  on \(oneLine(task.leaseOwner))" }
            if let error = task.lastError, !error.message.isEmpty {
                // A succeeded task's last error is an earlier attempt's, not its outcome.
                line += task.state == .succeeded
                    ? "  (attempt \(error.attempt) failed: \(oneLine(error.message)))" : "  (\(oneLine(error.message)))"
            }
            lines.append(line)
        }
        return lines.joined(separator: "\n")
    }

    static func event(_ event: Orchestrator_V1_WorkflowEvent) -> String {
        var text = "#\(event.sequence) \(time(event.atUnixMs)) \(eventName(event.type))"
        if !event.taskKey.isEmpty { text += " \(event.taskKey)" }
        if event.attempt > 0 { text += " attempt=\(event.attempt)" }
        if !event.executorID.isEmpty { text += " executor=\(oneLine(event.executorID))" }
        // Stored before the server clamped NaN; Int(NaN) traps.
        if event.type == .taskProgress { text += event.progress.isFinite ? " \(Int(event.progress * 100))%" : " ?%" }
        if !event.message.isEmpty { text += " — \(oneLine(event.message))" }
        return text
    }

    /// `text` with every control character escaped (`\n`, `\t`, `\r`, else `\u{1B}`): executors
    /// and callers write messages and ids, and a raw newline or escape sequence in them forged
    /// whole lines in an operator's terminal (found by black-box testing). `--json` is escaped by
    /// JSON itself.
    static func oneLine(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: \.isInvisibleInText) else { return text }
        var result = ""
        for scalar in text.unicodeScalars {
            guard scalar.isInvisibleInText else {
                result.unicodeScalars.append(scalar)
                continue
            }
            switch scalar {
            case "\n": result += "\\n"
            case "\t": result += "\\t"
            case "\r": result += "\\r"
            default: result += "\\u{" + String(scalar.value, radix: 16, uppercase: true) + "}"
            }
        }
        return result
    }

    static func eventName(_ type: Orchestrator_V1_EventType) -> String {
        "\(type)".replacingOccurrences(of: "([a-z])([A-Z])", with: "$1_$2", options: .regularExpression).uppercased()
    }

    static func dagTree(_ dag: Orchestrator_V1_Dag) -> String {
        var lines = ["DAG v\(dag.version) — \(dag.tasks.count == 1 ? "1 task" : "\(dag.tasks.count) tasks")" + (dag.reason.isEmpty ? "" : " (\(oneLine(dag.reason)))")]
        for task in dag.tasks {
            var line = "  \(task.key)"
            if !task.dependsOn.isEmpty { line += " ← " + task.dependsOn.joined(separator: ", ") }
            if !task.requiredCapabilities.isEmpty { line += "  [" + oneLine(task.requiredCapabilities.joined(separator: ", ")) + "]" }
            if !task.rationale.isEmpty { line += "  — \(oneLine(task.rationale))" }
            lines.append(line)
        }
        return lines.joined(separator: "\n")
    }
}
