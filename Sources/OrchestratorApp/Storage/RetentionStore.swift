/// What one pruning pass removed.
public struct PrunedWorkflows: Hashable, Sendable {
    public var workflows: Int
    public var tasks: Int
    public var events: Int

    public init(workflows: Int = 0, tasks: Int = 0, events: Int = 0) {
        self.workflows = workflows
        self.tasks = tasks
        self.events = events
    }

    public static func += (total: inout PrunedWorkflows, pass: PrunedWorkflows) {
        total.workflows += pass.workflows
        total.tasks += pass.tasks
        total.events += pass.events
    }
}

/// Retention's storage: deleting finished workflows with everything that belongs to them.
public protocol RetentionStore: Sendable {
    /// Deletes up to `limit` workflows that finished (succeeded, failed or cancelled) before
    /// `finishedBefore`, oldest first, each with its query, DAG versions, tasks, attempts, edges and
    /// events, in one transaction. A workflow another transaction holds is left for the next pass;
    /// one with a task still unfinished is never deleted.
    func pruneFinishedWorkflows(finishedBefore: UnixMillis, limit: Int) async throws -> PrunedWorkflows
}
