import Foundation
import OrchestratorApp
import OrchestratorDomain
import PostgresClient

extension PostgresDispatchStore {
    /// Applies a batch of completion reports in one transaction (the completion group commit:
    /// `report` queues each completion, `GroupCommit` hands whatever is queued to this):
    ///
    /// 1. one statement completes every report whose lease is held and applies the consequences
    ///    (`DispatchSQL.completeHeld`: fenced task update, attempts, children decremented and
    ///    readied, task_succeeded then task_ready events, the workflows locked); a task reported
    ///    twice in one batch goes to a second round, after the first, where it is refused as stale
    ///    — as if the reports had come one after the other;
    /// 2. right behind it, in the same round trip, one statement probes the workflows of the
    ///    batch's tasks for unfinished tasks (`workflowsOfTasksWithoutUnfinished`; only the ones
    ///    step 1 locked count);
    /// 3. only when some report was not applied, one read answers it: stale (with the current
    ///    token and state) or unknown;
    /// 4. one statement appends the batch's task events (task_succeeded in the batch's order, then
    ///    task_ready) with the NOTIFYs (`appendLast`), last before COMMIT: appending holds the
    ///    event-order lock until commit (migration 0006);
    /// 5. workflows the probe found done are finished (rare; their event follows the tasks').
    ///
    /// Before step 1, in its round trip, the batch locks its tasks' workflows
    /// (`DispatchSQL.lockWorkflowsOfTasks`), the lock a DAG update holds while it rewires the graph.
    ///
    /// So a batch costs two round trips (BEGIN with the lock and steps 1 and 2; step 4 with
    /// COMMIT), however many reports it holds; the workflow locks are held from the first to COMMIT.
    ///
    /// A failed batch rolled back entirely. When the database is unavailable every report gets
    /// that error; any other error (a report the batch statement chokes on) must not fail its
    /// neighbours, so each report is then applied on its own.
    func completeBatch(_ batch: [Caused<TaskReport>]) async -> [Result<ReportResult, any Error>] {
        let reports = batch.map(\.value)
        do {
            let causes = try Caused<TaskReport>.columns(batch.map(\.cause))
            return try await context.transaction { transaction in
                try await completeAll(reports, causes: causes, transaction: transaction)
            }.map { .success($0) }
        } catch let error as StoreError {
            return reports.map { _ in .failure(error) }
        } catch {
            guard reports.count > 1 else { return [.failure(error)] }
            var results: [Result<ReportResult, any Error>] = []
            for request in batch {
                do {
                    results.append(.success(try await AuditCause.$current.withValue(request.cause) { try await reportAlone(request.value) }))
                } catch {
                    results.append(.failure(error))
                }
            }
            return results
        }
    }

    private func completeAll(
        _ reports: [TaskReport], causes: (actors: [String?], traces: [String?]), transaction: StoreTransaction
    ) async throws -> [ReportResult] {
        var answers = [ReportResult?](repeating: nil, count: reports.count)
        // Rounds: the n-th report of one task goes to round n, so each statement sees a task once.
        var rounds: [[Int]] = []
        var seen: [UUID: Int] = [:]
        for (index, report) in reports.enumerated() {
            guard let id = UUID(uuidString: report.lease.taskID) else {
                answers[index] = .unknownTask
                continue
            }
            let round = seen[id, default: 0]
            seen[id] = round + 1
            if round == rounds.count { rounds.append([]) }
            rounds[round].append(index)
        }
        // Each round in task id order, the order every batch locks task rows in (the lease keeper
        // too): two batches holding rows the other wants deadlocked (events follow this order).
        let orderKeys = reports.map { $0.lease.taskID.lowercased() }
        rounds = rounds.map { round in round.sorted { orderKeys[$0] < orderKeys[$1] } }
        let now = reports.map(\.now).max() ?? 0
        var workflowOf: [Int: String] = [:]
        var events = TaskEventRows()
        var probe: PostgresRows?
        for (number, round) in rounds.enumerated() {
            let ids = round.map { UUID(uuidString: reports[$0].lease.taskID)! }
            var statements: [PostgresStatement] = []
            if number == 0 {
                // The workflows first, as UpdateDag locks them: completeHeld then sees their latest graph.
                statements.append(PostgresStatement(DispatchSQL.lockWorkflowsOfTasks, [Array(seen.keys)]))
            }
            statements += [
                PostgresStatement(
                    DispatchSQL.completeHeld,
                    [
                        ids, round.map { reports[$0].lease.fencingToken }, round.map { reports[$0].executorID },
                        round.map { reports[$0].completedResult }, round.map { reports[$0].now.sqlTimestamp },
                        round.map { causes.actors[$0] }, round.map { causes.traces[$0] }, now.sqlTimestamp,
                        context.configuration.agingBucket(now),
                    ])
            ]
            // After the last round's locks, in its round trip: the workflows done once it applied.
            if number == rounds.count - 1 {
                statements.append(PostgresStatement(DispatchSQL.workflowsOfTasksWithoutUnfinished, [Array(seen.keys)]))
            }
            let results = try await transaction.queries(statements)
            let first = number == 0 ? 1 : 0
            let rows = results[first]
            if results.count > first + 1 { probe = results[first + 1] }
            var done: [UUID: String] = [:]
            for row in rows {
                let id = try row.decode(UUID.self, column: "id")
                let workflowID = try row.decode(String.self, column: "workflow_id")
                let succeeded = try row.decode(Int.self, column: "phase") == 1
                if succeeded { done[id] = workflowID } else { transaction.readiedTasks = true }
                events.add(
                    workflowID: workflowID, type: succeeded ? "task_succeeded" : "task_ready",
                    at: try row.decode(Date?.self, column: "at") ?? now.sqlTimestamp, taskID: id, key: try row.decode(String.self, column: "key"),
                    state: succeeded ? "succeeded" : "ready", attempt: try row.decode(Int32?.self, column: "attempt"),
                    executor: try row.decode(String?.self, column: "executor"), actor: try row.decode(String?.self, column: "actor"),
                    trace: try row.decode(String?.self, column: "trace"))
            }
            var refused: [UUID] = []
            for (position, index) in round.enumerated() {
                if let workflowID = done[ids[position]] {
                    workflowOf[index] = workflowID
                } else {
                    refused.append(ids[position])
                }
            }
            guard !refused.isEmpty else { continue }
            var current: [UUID: RefusedTask] = [:]
            for row in try await transaction.query(DispatchSQL.taskStates, [refused]) {
                current[try row.decode(UUID.self, column: "id")] = try RefusedTask(row)
            }
            for (position, index) in round.enumerated() where done[ids[position]] == nil {
                answers[index] = current[ids[position]]?.answer(to: reports[index]) ?? .unknownTask
            }
        }
        // Probed before appending, finished after: the common batch appends last, right before COMMIT.
        let doneWorkflows = try probe.map { try StoreTransaction.lockedWorkflowsWithoutUnfinished($0, among: Set(workflowOf.values)) } ?? []
        transaction.appendLast(events)
        let finished = try await transaction.finish(doneWorkflows, now: now)
        // The workflow's new state goes to the last report of it in the batch (the one that
        // finished it, had the reports come one by one).
        var lastOfWorkflow: [String: Int] = [:]
        for (index, workflowID) in workflowOf { lastOfWorkflow[workflowID] = max(lastOfWorkflow[workflowID] ?? index, index) }
        for (index, workflowID) in workflowOf {
            answers[index] = .accepted(taskState: .succeeded, workflowState: lastOfWorkflow[workflowID] == index ? finished[workflowID] : nil)
        }
        return answers.map { $0 ?? .unknownTask }
    }
}

extension TaskReport {
    /// The result bytes of a completion (empty for other outcomes, which never reach the batch).
    fileprivate var completedResult: [UInt8] {
        if case .completed(let result) = outcome { return result }
        return []
    }
}

/// A task a completion was refused for, as `DispatchSQL.taskStates` reads it.
struct RefusedTask {
    var state: TaskState
    var token: Int64
    var tenant: String
    /// The executor and outcome of the attempt that holds the task's current token.
    var attemptExecutor: String?
    var attemptOutcome: String?
    /// The stored result, when the task succeeded.
    var result: [UInt8]?

    init(_ row: PostgresRow) throws {
        state = try TaskStateColumn.decode(try row.decode(String.self, column: "state"))
        token = try row.decode(Int64.self, column: "fencing_token")
        tenant = try row.decode(String.self, column: "tenant")
        attemptExecutor = try row.decode(String?.self, column: "attempt_executor")
        attemptOutcome = try row.decode(String?.self, column: "attempt_outcome")
        result = try row.decode([UInt8]?.self, column: "result")
    }

    /// Stale, unless the report is the very completion that was stored — the attempt that
    /// succeeded, its executor, the same result — sent again: an executor resending after a lost
    /// acknowledgement could not tell "stored" from "superseded" (found by black-box testing). A
    /// different result is refused, so an acknowledgement never suggests it was stored.
    func answer(to report: TaskReport) -> ReportResult {
        if case .completed(let sent) = report.outcome, state == .succeeded, token == report.lease.fencingToken,
            attemptOutcome == "succeeded", attemptExecutor?.hasSameBytes(as: report.executorID) == true, result == sent
        {
            return .alreadyCompleted
        }
        return .staleLease(currentToken: token, state: state, tenant: tenant)
    }
}
