/// A workflow graph as users and planners write it: tasks and the dependency edges between them, by key.
///
/// A `Dag` value is not necessarily valid (it may have cycles or dangling references); `DagValidator`
/// turns it into a `ValidatedDag`, which is.
public struct Dag: Hashable, Sendable, Codable {
    public var tasks: [TaskSpec]
    public var edges: [Edge]

    public init(tasks: [TaskSpec] = [], edges: [Edge] = []) {
        self.tasks = tasks
        self.edges = edges
    }

    public var isEmpty: Bool { tasks.isEmpty }

    /// The task with `key`, by linear search (for tests and small graphs; analysis uses `GraphIndex`).
    public func task(_ key: TaskKey) -> TaskSpec? { tasks.first { $0.key == key } }
}
