import Foundation
import OrchestratorApp
import PostgresClient

/// Task events of a batch, gathered in order while its statements run and appended by one
/// statement last in the transaction (`DispatchSQL.appendTaskEvents`), together with its NOTIFYs:
/// appending holds the event-order lock until commit (migration 0006), so the shorter the time
/// from the append to COMMIT, the less the batches of every server wait for one another.
struct TaskEventRows {
    var workflowIDs: [String] = []
    var types: [String] = []
    var times: [Date] = []
    var taskIDs: [UUID] = []
    var keys: [String] = []
    var states: [String] = []
    var attempts: [Int32?] = []
    var executors: [String?] = []
    var actors: [String?] = []
    var traces: [String?] = []

    var isEmpty: Bool { taskIDs.isEmpty }

    mutating func add(
        workflowID: String, type: String, at: Date, taskID: UUID, key: String, state: String, attempt: Int32?, executor: String?,
        actor: String?, trace: String?
    ) {
        workflowIDs.append(workflowID)
        types.append(type)
        times.append(at)
        taskIDs.append(taskID)
        keys.append(key)
        states.append(state)
        attempts.append(attempt)
        executors.append(executor)
        actors.append(actor)
        traces.append(trace)
    }
}

extension StoreTransaction {
    /// The task_ready events of retries `DispatchSQL.promoteDueRetries` just made ready; marks
    /// the transaction as having readied tasks (executors of any capability may be waiting).
    func promotedRetryEvents(_ rows: PostgresRows, now: UnixMillis) throws -> TaskEventRows {
        var events = TaskEventRows()
        for row in rows {
            events.add(
                workflowID: try row.decode(String.self, column: "workflow_id"), type: "task_ready", at: now.sqlTimestamp,
                taskID: try row.decode(UUID.self, column: "id"), key: try row.decode(String.self, column: "key"), state: "ready",
                attempt: try row.decode(Int32.self, column: "attempt"), executor: nil, actor: causeActor, trace: causeTraceID)
            readiedTasks = true
        }
        return events
    }

    /// Appends the rows and queues the NOTIFYs owed so far in one statement, sent with COMMIT (or
    /// with the next statement); the transaction then owes none (a later append, such as a
    /// workflow finishing, queues its own).
    func appendLast(_ rows: TaskEventRows) {
        guard !rows.isEmpty else { return }
        queue(
            DispatchSQL.appendTaskEvents,
            [
                rows.workflowIDs, rows.types, rows.times, rows.taskIDs, rows.keys, rows.states, rows.attempts, rows.executors,
                rows.actors, rows.traces, configuration.eventsChannel, readiedTasks, configuration.tasksReadyChannel,
            ])
        readiedTasks = false
        appendedEvents = false
    }
}
