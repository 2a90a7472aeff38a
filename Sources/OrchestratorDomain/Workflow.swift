/// A query being carried out: its lifecycle state and the numbered versions of its graph.
public struct Workflow: Hashable, Sendable {
    public var id: String
    public var query: Query
    public var lifecycle: WorkflowLifecycle
    /// Oldest first; never empty once planned. `versions.last` is the current graph.
    public private(set) var versions: [DagVersion]

    public init(id: String, query: Query) {
        self.id = id
        self.query = query
        self.lifecycle = WorkflowLifecycle()
        self.versions = []
    }

    public var currentVersion: DagVersion? { versions.last }

    /// Records a new graph version; its number must follow the current one (optimistic concurrency).
    public mutating func append(_ version: DagVersion) throws(DagVersionConflict) {
        let expected = (versions.last?.number ?? 0) + 1
        guard version.number == expected else {
            throw DagVersionConflict(expected: expected, actual: version.number)
        }
        versions.append(version)
    }
}

/// A graph update named a version that is not the next one: another writer got there first.
public struct DagVersionConflict: Error, Hashable, Sendable, CustomStringConvertible {
    public var expected: Int
    public var actual: Int

    public var description: String {
        "DAG version conflict: expected version \(expected), got \(actual) (another update got there first)"
    }
}
