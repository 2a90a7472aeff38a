/// Tunables of the PostgreSQL store.
public struct StoreConfiguration: Sendable {
    /// Waiting this long raises a ready task's effective priority by one (aging, so low-priority
    /// work is never starved). See docs/SCHEMA.md, "Repositories".
    public var agingIntervalMillis: Int64
    /// NOTIFY channel for "tasks became ready" (payload empty).
    public var tasksReadyChannel: String
    /// NOTIFY channel for "events were appended" (payload: the last sequence number).
    public var eventsChannel: String

    public init(
        agingIntervalMillis: Int64 = 60_000, tasksReadyChannel: String = "orchestrator_tasks_ready",
        eventsChannel: String = "orchestrator_events"
    ) {
        precondition(agingIntervalMillis > 0, "the aging interval must be positive")
        self.agingIntervalMillis = agingIntervalMillis
        self.tasksReadyChannel = tasksReadyChannel
        self.eventsChannel = eventsChannel
    }

    /// The aging bucket of an instant: `dispatch_priority = priority - bucket(ready_at)`.
    func agingBucket(_ millis: Int64) -> Int64 {
        millis >= 0 ? millis / agingIntervalMillis : -((-millis + agingIntervalMillis - 1) / agingIntervalMillis)
    }
}
