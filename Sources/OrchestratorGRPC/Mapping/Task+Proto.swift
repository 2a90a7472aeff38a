public import OrchestratorAPI
public import OrchestratorApp
public import OrchestratorDomain

extension Orchestrator_V1_Task {
    /// The API form of a stored task.
    ///
    /// - Parameters:
    ///   - dependsOn: the task's upstream keys in its DAG version (the stored task does not carry edges).
    ///   - now: decides whether a READY task is still waiting out its backoff (shown as RETRY_WAIT).
    public init(_ task: StoredTask, dependsOn: [TaskKey] = [], now: UnixMillis) {
        self.init()
        taskID = task.taskID
        workflowID = task.workflowID
        spec = Orchestrator_V1_TaskSpec(task.spec, dependsOn: dependsOn, payload: task.payload)
        state = Orchestrator_V1_TaskState(task.state, availableAt: task.availableAt, now: now)
        attempt = Int32(clamping: task.attempt)
        maxAttempts = Int32(clamping: task.maxAttempts)
        unfinishedUpstream = Int32(clamping: task.unfinishedUpstream)
        rank = task.rank
        leaseOwner = task.leaseOwner ?? ""
        leaseExpiresUnixMs = task.leaseExpiresAt ?? 0
        result = task.result ?? []
        lastError = task.lastError.map(Orchestrator_V1_TaskError.init)
        createdUnixMs = task.createdAt
        readyUnixMs = task.readyAt ?? 0
        startedUnixMs = task.startedAt ?? 0
        finishedUnixMs = task.finishedAt ?? 0
        traceID = task.traceID
        dagVersion = Int32(clamping: task.dagVersion)
    }
}

extension Orchestrator_V1_TaskError {
    public init(_ failure: TaskFailureInfo) {
        self.init(
            message: failure.message, code: failure.code, retryable: failure.retryable,
            attempt: Int32(clamping: failure.attempt), source: failure.source.rawValue)
    }
}

extension Orchestrator_V1_TaskCounts {
    /// Per-state counts, tasks in a retry backoff as RETRY_WAIT (they were counted as READY when
    /// the workflow was read without its tasks; found by black-box testing).
    public init(_ counts: TaskCounts) {
        self.init(
            total: Int32(clamping: counts.total), pending: Int32(clamping: counts[.pending]),
            ready: Int32(clamping: counts[.ready]), leased: Int32(clamping: counts[.leased]),
            running: Int32(clamping: counts[.running]), succeeded: Int32(clamping: counts[.succeeded]),
            failed: Int32(clamping: counts[.failed]), cancelled: Int32(clamping: counts[.cancelled]),
            skipped: Int32(clamping: counts[.skipped]), retryWait: Int32(clamping: counts.retryWaiting))
    }

    /// Counts computed from the tasks themselves, with READY tasks in backoff counted as RETRY_WAIT.
    public init(tasks: [StoredTask], now: UnixMillis) {
        self.init()
        total = Int32(clamping: tasks.count)
        for task in tasks {
            switch Orchestrator_V1_TaskState(task.state, availableAt: task.availableAt, now: now) {
            case .pending: pending += 1
            case .ready: ready += 1
            case .leased: leased += 1
            case .running: running += 1
            case .succeeded: succeeded += 1
            case .failed: failed += 1
            case .cancelled: cancelled += 1
            case .skipped: skipped += 1
            case .retryWait: retryWait += 1
            case .unspecified, .unrecognized: break
            }
        }
    }
}
