public import Logging

/// Deletes workflows that finished more than `retention` ago, with their tasks, attempts, DAG
/// versions and events (`--retention`, docs/SCHEMA.md "Retention"). Without it the database only
/// grows: a steady load of small workflows wrote about 9 MB a minute, most of it events, and
/// nothing ever removed a finished workflow.
///
/// Every server on a database may run it: a pass takes only workflows no other transaction holds
/// (`RetentionStore`), so two servers share the work instead of waiting on each other.
public struct RetentionService: Sendable {
    public let retention: Duration
    /// Time between runs; each run deletes everything due, pass after pass.
    public let interval: Duration
    public let workflowsPerPass: Int
    let store: any RetentionStore
    let clock: any WallClock
    let logger: Logger
    let pruned: @Sendable (PrunedWorkflows) -> Void
    private let outageLogs = LogThrottle()

    /// - Parameters:
    ///   - interval: nil: a tenth of `retention`, between 1 s and 1 min, so a workflow outlives
    ///     its retention by at most about a tenth of it.
    ///   - pruned: told what each pass deleted (metrics).
    public init(
        retention: Duration, store: any RetentionStore, interval: Duration? = nil, workflowsPerPass: Int = 200,
        clock: any WallClock = SystemWallClock(), logger: Logger = Logger(label: "orchestrator.retention"),
        pruned: @escaping @Sendable (PrunedWorkflows) -> Void = { _ in }
    ) {
        self.retention = retention
        self.interval = interval ?? min(max(retention / 10, .seconds(1)), .seconds(60))
        self.workflowsPerPass = max(workflowsPerPass, 1)
        self.store = store
        self.clock = clock
        self.logger = logger
        self.pruned = pruned
    }

    /// Prunes every `interval` until cancelled.
    public func run() -> Task<Void, Never> {
        Task {
            logger.notice("finished workflows are deleted after the retention period", metadata: [
                "retention_ms": "\(DispatchConfiguration.millis(retention))", "interval_ms": "\(DispatchConfiguration.millis(interval))",
            ])
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                if Task.isCancelled { return }
                do {
                    let total = try await pruneExpired()
                    if total.workflows > 0 {
                        logger.info("pruned finished workflows past their retention", metadata: [
                            "workflows": "\(total.workflows)", "tasks": "\(total.tasks)", "events": "\(total.events)",
                        ])
                    }
                } catch {
                    if let suppressed = outageLogs.admit("retention pass failed") {
                        logger.warning("retention pass failed; retried at the next", metadata: ["error": "\(error)", "suppressed": "\(suppressed)"])
                    }
                }
            }
        }
    }

    /// Deletes, pass after pass, every workflow that finished before `now - retention`; returns
    /// what went. Each pass is its own transaction, so the database never holds one long delete,
    /// and each is followed by a pause as long as it took: turned on over a large backlog,
    /// retention takes at most about half of one connection's time, not all of it for hours.
    @discardableResult
    public func pruneExpired() async throws -> PrunedWorkflows {
        let cutoff = clock.now() - DispatchConfiguration.millis(retention)
        var total = PrunedWorkflows()
        while !Task.isCancelled {
            let started = ContinuousClock.now
            let pass = try await store.pruneFinishedWorkflows(finishedBefore: cutoff, limit: workflowsPerPass)
            total += pass
            pruned(pass)
            // A pass may stop short of its workflow limit at the store's row budget, so only an
            // empty one says nothing more is due (or all of it is held elsewhere for now).
            if pass.workflows == 0 { break }
            try await Task.sleep(for: ContinuousClock.now - started)
        }
        return total
    }
}
