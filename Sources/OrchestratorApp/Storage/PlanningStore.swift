import OrchestratorDomain

/// A task of a workflow that is still PLANNING: its graph is a delegated planner's planning task,
/// and the graph that task proposes has not been adopted yet.
public struct PlanningTask: Hashable, Sendable {
    public var workflowID: String
    public var tenant: String
    public var taskID: String
    public var key: TaskKey
    public var state: TaskState
    /// The task's result once it succeeded: the proposed graph, encoded by the edge's contract.
    public var result: [UInt8]?

    public init(workflowID: String, tenant: String, taskID: String, key: TaskKey, state: TaskState, result: [UInt8]?) {
        self.workflowID = workflowID
        self.tenant = tenant
        self.taskID = taskID
        self.key = key
        self.state = state
        self.result = result
    }
}

/// What delegated planning needs from storage beyond `WorkflowStore`. The store keeps a workflow in
/// PLANNING (never finishes it as succeeded) while its planning task's answer awaits adoption; the
/// adoption itself is `WorkflowStore.updateDag` with `DagUpdate.completesPlanning`.
public protocol PlanningStore: Sendable {
    /// The task with this id when its workflow is PLANNING; nil for any other task.
    func planningTask(id: String) async throws -> PlanningTask?

    /// Succeeded tasks of workflows still PLANNING that finished before `finishedBefore`: answers
    /// whose adoption was interrupted (a crash or a lost database between completion and adoption).
    func plansAwaitingAdoption(finishedBefore: UnixMillis, limit: Int) async throws -> [PlanningTask]

    /// Ends a PLANNING workflow as failed with `message` (its stored answer cannot be adopted).
    /// Does nothing when the workflow is no longer PLANNING.
    func failPlanning(workflowID: String, message: String, now: UnixMillis) async throws
}
