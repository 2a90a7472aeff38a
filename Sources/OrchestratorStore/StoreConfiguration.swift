/// Tunables of the PostgreSQL store.
public struct StoreConfiguration: Sendable {
    /// Waiting this long raises a ready task's effective priority by one (aging, so low-priority
    /// work is never starved). See docs/SCHEMA.md, "Repositories".
    public var agingIntervalMillis: Int64
    /// NOTIFY channel for "tasks became ready" (payload empty).
    public var tasksReadyChannel: String
    /// NOTIFY channel for "events were appended" (payload: the last sequence number).
    public var eventsChannel: String
    /// Most claim requests served by one claim transaction (group commit).
    public var claimBatchLimit: Int
    /// Most completion reports applied by one transaction (group commit). Bounds the time one
    /// batch holds its row locks.
    public var completionBatchLimit: Int
    /// Batches of one kind (claims, completions) applied at once: 1 is strict group commit; 2 lets
    /// the next batch run while the previous one commits.
    public var concurrentBatches: Int

    public init(
        agingIntervalMillis: Int64 = 60_000, tasksReadyChannel: String = "orchestrator_tasks_ready",
        eventsChannel: String = "orchestrator_events", claimBatchLimit: Int = 128, completionBatchLimit: Int = 512,
        concurrentBatches: Int = 2
    ) {
        precondition(agingIntervalMillis > 0, "the aging interval must be positive")
        self.agingIntervalMillis = agingIntervalMillis
        self.tasksReadyChannel = tasksReadyChannel
        self.eventsChannel = eventsChannel
        self.claimBatchLimit = max(1, claimBatchLimit)
        self.completionBatchLimit = max(1, completionBatchLimit)
        self.concurrentBatches = max(1, concurrentBatches)
    }

    /// The aging bucket of an instant: `dispatch_priority = priority - bucket(ready_at)`.
    func agingBucket(_ millis: Int64) -> Int64 {
        millis >= 0 ? millis / agingIntervalMillis : -((-millis + agingIntervalMillis - 1) / agingIntervalMillis)
    }
}
