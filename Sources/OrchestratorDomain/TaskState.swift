/// Where a task is in its life. `succeeded`, `failed`, `cancelled` and `skipped` are terminal.
public enum TaskState: String, Hashable, Sendable, Codable, CaseIterable {
    /// Waiting for upstream tasks.
    case pending
    /// Every upstream task succeeded; waiting for an executor (also where a retry waits out its backoff).
    case ready
    /// Handed to an executor under a lease; not yet confirmed running.
    case leased
    /// The executor reported progress or start.
    case running
    case succeeded
    /// Failed for good: a permanent failure, or the last allowed attempt failed or lost its lease.
    case failed
    case cancelled
    /// Will never run because an upstream task failed or was cancelled.
    case skipped

    public var isTerminal: Bool {
        switch self {
        case .succeeded, .failed, .cancelled, .skipped: true
        case .pending, .ready, .leased, .running: false
        }
    }
}

/// What can happen to a task.
public enum TaskEvent: String, Hashable, Sendable, Codable, CaseIterable {
    case dependenciesSatisfied
    /// An executor takes the task; starts a new attempt (the attempt number is the lease's fencing token).
    case lease
    case start
    case succeed
    /// A retryable failure reported by the executor.
    case fail
    /// A failure the executor says retrying cannot fix.
    case failPermanently
    /// The lease ran out without a heartbeat (the executor died or hung).
    case leaseExpire
    case cancel
    /// An upstream task failed or was cancelled.
    case skip
}
