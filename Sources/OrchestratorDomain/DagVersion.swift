/// One numbered version of a workflow's graph. Every change (re-planning, adopting a delegated plan,
/// dynamic task generation) makes a new version with a reason; old versions stay readable.
public struct DagVersion: Hashable, Sendable, Codable {
    /// 1 for the first plan, then +1 per change.
    public var number: Int
    public var dag: Dag
    /// Why this version exists ("planned by catalog", "adopted delegated plan from task `plan`").
    public var reason: String

    public init(number: Int, dag: Dag, reason: String) {
        self.number = number
        self.dag = dag
        self.reason = reason
    }
}
