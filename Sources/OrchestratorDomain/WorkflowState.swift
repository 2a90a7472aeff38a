/// Where a workflow is in its life. `succeeded`, `failed` and `cancelled` are terminal.
public enum WorkflowState: String, Hashable, Sendable, Codable, CaseIterable {
    /// Accepted, not yet planned.
    case pending
    /// A planner is working on it (for a delegated plan: the workflow runs its planning task).
    case planning
    case running
    case succeeded
    case failed
    case cancelled

    public var isTerminal: Bool {
        switch self {
        case .succeeded, .failed, .cancelled: true
        case .pending, .planning, .running: false
        }
    }
}

/// What can happen to a workflow.
public enum WorkflowEvent: String, Hashable, Sendable, Codable, CaseIterable {
    case startPlanning
    /// A valid DAG version was stored; tasks may be dispatched.
    case planAdopted
    case planningFailed
    /// A delegated planning task finished and its graph was adopted as a new version while running, or
    /// a task generated new work: the workflow keeps running (listed so the table states it is legal).
    case graphExtended
    case allTasksSucceeded
    /// A task failed for good and the failure policy fails the workflow.
    case taskFailed
    case cancel
}
