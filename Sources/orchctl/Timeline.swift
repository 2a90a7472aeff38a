import OrchestratorAPI

/// A workflow's timeline rebuilt from its event log: one row for submission and planning, one
/// per task (each attempt with its executor, wait and run times), and the workflow's end.
/// Times are milliseconds from the workflow's first event.
struct Timeline: Encodable {
    struct Attempt: Encodable {
        var attempt: Int
        var executorID: String
        /// When the task became ready (or its retry was due) for this attempt.
        var readyMs: Int64?
        var leasedMs: Int64?
        var runningMs: Int64?
        var endMs: Int64?
        /// succeeded, failed, retry_scheduled, lease_expired, cancelled, or nil while running.
        var outcome: String?

        enum CodingKeys: String, CodingKey {
            case attempt, executorID = "executor_id", readyMs = "ready_ms", leasedMs = "leased_ms", runningMs = "running_ms",
                endMs = "end_ms", outcome
        }
    }

    struct Row: Encodable {
        /// "workflow", "planning" or "task".
        var kind: String
        var name: String
        var taskID: String?
        var startMs: Int64
        var endMs: Int64?
        var durationMs: Int64? { endMs.map { $0 - startMs } }
        var state: String
        var attempts: [Attempt]
        var executors: [String]
        var detail: String?

        enum CodingKeys: String, CodingKey {
            case kind, name, taskID = "task_id", startMs = "start_ms", endMs = "end_ms", durationMs = "duration_ms", state,
                attempts, executors, detail
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(kind, forKey: .kind)
            try container.encode(name, forKey: .name)
            try container.encodeIfPresent(taskID, forKey: .taskID)
            try container.encode(startMs, forKey: .startMs)
            try container.encodeIfPresent(endMs, forKey: .endMs)
            try container.encodeIfPresent(durationMs, forKey: .durationMs)
            try container.encode(state, forKey: .state)
            try container.encode(attempts, forKey: .attempts)
            try container.encode(executors, forKey: .executors)
            try container.encodeIfPresent(detail, forKey: .detail)
        }
    }

    var workflowID: String
    var traceID: String
    var state: String
    /// Unix milliseconds of the first event (offset 0).
    var originUnixMs: Int64
    /// Offset of the last event (or of the workflow's end).
    var spanMs: Int64
    var rows: [Row]
    var eventCount: Int

    enum CodingKeys: String, CodingKey {
        case workflowID = "workflow_id", traceID = "trace_id", state, originUnixMs = "origin_unix_ms", spanMs = "duration_ms",
            rows, eventCount = "event_count"
    }

    init(workflow: Orchestrator_V1_Workflow, events: [Orchestrator_V1_WorkflowEvent]) {
        let sorted = events.sorted { $0.sequence < $1.sequence }
        let origin = sorted.first?.atUnixMs ?? workflow.createdUnixMs
        func offset(_ event: Orchestrator_V1_WorkflowEvent) -> Int64 { max(0, event.atUnixMs - origin) }
        workflowID = workflow.workflowID
        traceID = workflow.traceID
        state = Render.state(workflow.state)
        originUnixMs = origin
        eventCount = sorted.count

        var planning = Row(kind: "planning", name: "submit + plan", startMs: 0, endMs: nil, state: "pending", attempts: [], executors: [])
        if let info = workflow.planning { planning.detail = "planner \(info.planner), \(info.durationUs) µs" }
        var ending: Row?
        var tasks: [String: Row] = [:]
        var order: [String] = []
        var last: Int64 = 0

        for event in sorted {
            let at = offset(event)
            last = max(last, at)
            switch event.type {
            case .workflowSubmitted:
                planning.startMs = at
            case .workflowPlanned:
                planning.endMs = at
                planning.state = "planned"
            case .workflowSucceeded, .workflowFailed, .workflowCancelled:
                if planning.endMs == nil { planning.endMs = at }
                ending = Row(kind: "workflow", name: "finished", startMs: at, endMs: at,
                             state: Render.state(event.workflowState).lowercased(), attempts: [], executors: [],
                             detail: event.message.isEmpty ? nil : event.message)
            default:
                guard !event.taskID.isEmpty else { continue }
                if tasks[event.taskID] == nil {
                    order.append(event.taskID)
                    tasks[event.taskID] = Row(kind: "task", name: event.taskKey.isEmpty ? event.taskID : event.taskKey,
                                              taskID: event.taskID, startMs: at, endMs: nil, state: "pending", attempts: [], executors: [])
                }
                Self.apply(event, at: at, to: &tasks[event.taskID]!)
            }
        }
        if planning.endMs == nil, planning.state == "pending", !order.isEmpty {
            // Older logs without a planned event: planning ended when the first task appeared.
            planning.endMs = tasks[order[0]]?.startMs
        }
        rows = [planning] + order.compactMap { tasks[$0] } + (ending.map { [$0] } ?? [])
        spanMs = last
    }

    /// Folds one task event into its row.
    static func apply(_ event: Orchestrator_V1_WorkflowEvent, at: Int64, to row: inout Row) {
        let number = Int(event.attempt)
        func current() -> Int {
            if let index = row.attempts.lastIndex(where: { $0.attempt == number && $0.outcome == nil }) { return index }
            row.attempts.append(Attempt(attempt: number, executorID: "", readyMs: nil, leasedMs: nil, runningMs: nil, endMs: nil, outcome: nil))
            return row.attempts.count - 1
        }
        switch event.type {
        case .taskReady:
            row.state = "ready"
            // A ready task waits for its next attempt; the attempt number is assigned when leased.
            row.attempts.append(Attempt(attempt: number + 1, executorID: "", readyMs: at, leasedMs: nil, runningMs: nil, endMs: nil, outcome: nil))
        case .taskLeased:
            row.state = "leased"
            var index = row.attempts.lastIndex { $0.outcome == nil && $0.leasedMs == nil }
            if index == nil {
                row.attempts.append(Attempt(attempt: number, executorID: "", readyMs: nil, leasedMs: nil, runningMs: nil, endMs: nil, outcome: nil))
                index = row.attempts.count - 1
            }
            row.attempts[index!].attempt = number
            row.attempts[index!].leasedMs = at
            row.attempts[index!].executorID = event.executorID
            if !event.executorID.isEmpty, !row.executors.contains(event.executorID) { row.executors.append(event.executorID) }
        case .taskRunning, .taskProgress:
            row.state = "running"
            let index = current()
            if row.attempts[index].runningMs == nil { row.attempts[index].runningMs = at }
        case .taskSucceeded, .taskFailed, .taskCancelled, .taskSkipped, .taskRetryScheduled, .taskLeaseExpired:
            let outcome: String
            switch event.type {
            case .taskSucceeded: outcome = "succeeded"
            case .taskFailed: outcome = "failed"
            case .taskCancelled: outcome = "cancelled"
            case .taskSkipped: outcome = "skipped"
            case .taskRetryScheduled: outcome = "retry_scheduled"
            default: outcome = "lease_expired"
            }
            if event.type == .taskRetryScheduled, !row.attempts.contains(where: { $0.attempt == number && $0.outcome == nil }),
                row.attempts.contains(where: { $0.attempt == number }) {
                // The attempt is already closed (its lease expired or it failed; the retry is
                // recorded after): a new empty attempt here drew the backoff to the workflow's end.
                row.state = "retry-wait"
                return
            }
            if event.type == .taskSkipped || event.type == .taskCancelled, row.attempts.last?.leasedMs == nil {
                // Never ran. A task that was ready keeps its wait (drawn `░` up to here; it was
                // dropped, leaving an instant where the task had waited); one that never became
                // ready has no attempt, only its end.
                if let index = row.attempts.indices.last, row.attempts[index].outcome == nil {
                    if row.attempts[index].readyMs == nil {
                        row.attempts.removeLast()
                    } else {
                        row.attempts[index].endMs = at
                        row.attempts[index].outcome = outcome
                    }
                }
            } else {
                let index = current()
                row.attempts[index].endMs = at
                row.attempts[index].outcome = outcome
            }
            switch event.type {
            case .taskRetryScheduled, .taskLeaseExpired:
                row.state = "retry-wait"
            default:
                row.state = outcome
                row.endMs = at
            }
        default:
            break
        }
    }
}
