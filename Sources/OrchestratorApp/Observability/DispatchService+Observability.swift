import Logging
import OrchestratorDomain

/// Metrics and log lines for the dispatch path, kept out of the dispatch logic: each hook is one
/// call at the point where the event happened. Every line names the task's `workflow_id`,
/// `task_id` and `executor_id`, and `trace_id` where this process knows it (leases it granted).
extension DispatchService {
    /// After a claim: one lease per task granted at `now`.
    func observeClaims(_ claimed: [ClaimedTask], executorID: String, now: UnixMillis) {
        for claim in claimed {
            let task = claim.task
            metrics.tasksLeased.increment()
            if task.attempt > 1 { metrics.reassignments.increment() }
            if let readyAt = task.readyAt { metrics.readyToLeased.observe(Double(max(0, now - readyAt)) / 1000) }
            metrics.leaseTimes.record(claim.lease, .init(leasedAt: now, workflowID: task.workflowID, traceID: task.traceID))
            logger.debug("task leased", metadata: [
                "workflow_id": "\(task.workflowID)", "task_id": "\(task.taskID)", "task_key": "\(task.spec.key.rawValue)",
                "executor_id": "\(executorID)", "trace_id": "\(task.traceID)", "attempt": "\(task.attempt)",
            ])
        }
    }

    /// After leases were resumed on a new stream: their reports' log lines name the workflow and
    /// its trace, as for leases granted here (a resumed lease's "workflow finished" line had no
    /// workflow_id and the Lease stream's trace id; found by black-box testing).
    func observeResumed(_ states: [LeaseState]) {
        for state in states where state.valid {
            guard let workflowID = state.workflowID, let traceID = state.traceID else { continue }
            metrics.leaseTimes.record(state.lease, .init(leasedAt: nil, workflowID: workflowID, traceID: traceID))
        }
    }

    /// After a report was applied (or refused).
    func observeReport(_ lease: LeaseToken, executorID: String, outcome: TaskReport.Outcome, result: ReportResult) {
        let kind: String
        switch outcome {
        case .progress: kind = "progress"
        case .completed: kind = "completed"
        case .failed: kind = "failed"
        }
        var metadata: Logger.Metadata = ["task_id": "\(lease.taskID)", "attempt": "\(lease.fencingToken)", "executor_id": "\(executorID)"]
        let isFinal: Bool
        if case .progress = outcome { isFinal = false } else { isFinal = true }
        let entry = isFinal ? metrics.leaseTimes.take(lease) : metrics.leaseTimes.entry(of: lease)
        if let entry {
            metadata["workflow_id"] = "\(entry.workflowID)"
            metadata["trace_id"] = "\(entry.traceID)"
        }
        switch result {
        case .accepted(let state, let workflowState):
            metrics.reports.labels(kind, "accepted").increment()
            guard isFinal else { return }
            let doneOutcome = state == .succeeded ? "succeeded" : state == .failed ? "failed" : "retried"
            if let leasedAt = entry?.leasedAt {
                metrics.leasedToDone.labels(doneOutcome).observe(Double(max(0, clock.now() - leasedAt)) / 1000)
            }
            metadata["task_state"] = "\(state.rawValue)"
            switch outcome {
            case .failed(let message, let code, let retryable):
                if doneOutcome == "retried" { metrics.retries.labels("failure").increment() }
                metadata["error"] = "\(message)"
                metadata["code"] = "\(code)"
                metadata["retryable"] = "\(retryable)"
                logger.info(doneOutcome == "retried" ? "task failed; retry scheduled" : "task failed", metadata: metadata)
            default:
                logger.debug("task completed", metadata: metadata)
            }
            if let workflowState {
                metadata["workflow_state"] = "\(workflowState.rawValue)"
                logger.info("workflow finished", metadata: metadata)
            }
        case .staleLease(let currentToken, let state, _):
            metrics.reports.labels(kind, "stale").increment()
            metadata["current_attempt"] = "\(currentToken)"
            metadata["task_state"] = "\(state.rawValue)"
            logger.info("stale report refused", metadata: metadata)
        case .alreadyCompleted:
            metrics.reports.labels(kind, "already_completed").increment()
            logger.info("completion sent again; it was stored before", metadata: metadata)
        case .unknownTask:
            metrics.reports.labels(kind, "unknown_task").increment()
            logger.info("report for an unknown task refused", metadata: metadata)
        case .heldByAnotherStream:
            metrics.reports.labels(kind, "held_by_another_stream").increment()
            logger.info("report refused: another stream of the executor resumed the lease", metadata: metadata)
        case .assignedToAnotherStream:
            metrics.reports.labels(kind, "held_by_another_stream").increment()
            logger.info("report refused: the lease was assigned to another stream of the executor", metadata: metadata)
        }
    }

    /// After the reaper took leases back.
    func observeExpired(_ expired: [ExpiredLease]) {
        for lease in expired {
            let cause = lease.cause == .timeout ? "timeout" : "lease_expired"
            metrics.leaseExpirations.labels(cause).increment()
            if lease.newState == .ready { metrics.retries.labels(cause).increment() }
            logger.info(lease.cause == .timeout ? "attempt timed out" : "lease expired", metadata: metadata(for: lease, cause: cause))
        }
    }

    /// After leases were given back because their stream ended.
    func observeReleased(_ released: [ExpiredLease]) {
        for lease in released {
            metrics.leasesReleased.increment()
            if lease.newState == .ready { metrics.retries.labels("released").increment() }
            logger.info("lease released", metadata: metadata(for: lease, cause: "released"))
        }
    }

    private func metadata(for lease: ExpiredLease, cause: String) -> Logger.Metadata {
        var metadata: Logger.Metadata = [
            "workflow_id": "\(lease.workflowID)", "task_id": "\(lease.lease.taskID)", "executor_id": "\(lease.executorID)",
            "attempt": "\(lease.lease.fencingToken)", "task_state": "\(lease.newState.rawValue)", "cause": "\(cause)",
        ]
        if let entry = metrics.leaseTimes.take(lease.lease) { metadata["trace_id"] = "\(entry.traceID)" }
        return metadata
    }
}
