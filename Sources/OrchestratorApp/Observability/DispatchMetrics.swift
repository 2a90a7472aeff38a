public import OrchestratorMetrics
import Synchronization

/// What dispatch records: leases handed out, how long tasks waited for them and held them,
/// retries, lease expirations, releases and reassignments. Counted by this process (a fleet's
/// totals are the sum over its servers).
public struct DispatchMetrics: Sendable {
    let tasksLeased: Counter
    /// The part of `tasksLeased` granted by direct dispatch (stored leased, no claim).
    let tasksLeasedDirectly: Counter
    let reassignments: Counter
    let readyToLeased: Histogram
    /// By outcome: succeeded, failed, retried.
    let leasedToDone: HistogramFamily
    /// By cause: failure (the executor reported a retryable failure), lease_expired, timeout, released.
    let retries: CounterFamily
    /// By cause: lease_expired, timeout.
    let leaseExpirations: CounterFamily
    let leasesReleased: Counter
    /// By outcome (progress, completed, failed) and result (accepted, stale, unknown_task).
    let reports: CounterFamily
    /// When each lease this process handed out was granted, for leased-to-done times.
    let leaseTimes = LeaseTimes()

    public init(registry: MetricsRegistry) {
        tasksLeased = registry.counter("orchestrator_tasks_leased_total", help: "Leases granted to executors by this server (every attempt).").labels()
        tasksLeasedDirectly = registry.counter(
            "orchestrator_tasks_leased_directly_total",
            help: "Leases granted by direct dispatch: a new workflow's task stored already leased to an idle executor stream (counted in orchestrator_tasks_leased_total too).").labels()
        reassignments = registry.counter(
            "orchestrator_task_reassignments_total", help: "Leases granted for a second or later attempt of a task (it ran before and came back).").labels()
        readyToLeased = registry.histogram(
            "orchestrator_task_ready_to_leased_seconds", help: "Time a task waited in the ready queue before an executor leased it.",
            buckets: Histogram.waitBounds).labels()
        leasedToDone = registry.histogram(
            "orchestrator_task_leased_to_done_seconds",
            help: "Time from granting a lease to the executor's final report on it, by outcome (succeeded, failed, retried).",
            labels: ["outcome"], buckets: Histogram.waitBounds)
        retries = registry.counter(
            "orchestrator_task_retries_total",
            help: "Task attempts that ended and put the task back in the queue for another attempt, by cause (failure, lease_expired, timeout, released).",
            labels: ["cause"])
        leaseExpirations = registry.counter(
            "orchestrator_lease_expirations_total", help: "Leases taken back by the reaper, by cause (lease_expired: no heartbeat in time; timeout: the attempt ran past its start_to_close timeout).",
            labels: ["cause"])
        leasesReleased = registry.counter(
            "orchestrator_leases_released_total", help: "Leases given back at once because their executor's stream ended.").labels()
        reports = registry.counter(
            "orchestrator_task_reports_total",
            help: "Executor reports received, by outcome (progress, completed, failed) and result (accepted, stale, unknown_task, already_completed, held_by_another_stream).",
            labels: ["outcome", "result"])
        // Every known series from the start, at 0: a series that appears only with its first event
        // gives rate() and absence alerts nothing to work on until then (found by black-box testing).
        for cause in ["failure", "lease_expired", "timeout", "released"] { _ = retries.labels(cause) }
        for cause in ["lease_expired", "timeout"] { _ = leaseExpirations.labels(cause) }
        for outcome in ["succeeded", "failed", "retried"] { _ = leasedToDone.labels(outcome) }
        for outcome in ["progress", "completed", "failed"] {
            for result in ["accepted", "stale", "unknown_task"] { _ = reports.labels(outcome, result) }
        }
        _ = reports.labels("completed", "already_completed")
        for outcome in ["progress", "completed", "failed"] { _ = reports.labels(outcome, "held_by_another_stream") }
    }

    /// Records into a registry nobody scrapes (tests, tools).
    public static let disabled = DispatchMetrics(registry: MetricsRegistry())
}

/// Lease grant times by token, so a final report can be timed against its lease. Bounded: past
/// `capacity` entries (reports that never came, from executors that vanished with leases that
/// then expired in another server) the table is cleared, and those few reports go untimed.
/// Thread-safety: guarded by `entries`' mutex.
final class LeaseTimes: Sendable {
    struct Entry: Sendable {
        /// nil for a lease resumed from another stream: when it was granted is not known here.
        var leasedAt: UnixMillis?
        var workflowID: String
        var traceID: String
    }

    private let entries = Mutex<[LeaseToken: Entry]>([:])
    let capacity: Int

    init(capacity: Int = 65_536) { self.capacity = capacity }

    func record(_ lease: LeaseToken, _ entry: Entry) {
        entries.withLock { entries in
            if entries.count >= capacity { entries.removeAll(keepingCapacity: true) }
            entries[lease] = entry
        }
    }

    func entry(of lease: LeaseToken) -> Entry? { entries.withLock { $0[lease] } }

    func take(_ lease: LeaseToken) -> Entry? { entries.withLock { $0.removeValue(forKey: lease) } }
}
