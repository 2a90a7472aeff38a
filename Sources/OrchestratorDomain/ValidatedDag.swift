/// A graph that passed validation: unique keys, known references, no self-loops, no duplicate edges, no
/// cycles, within limits. Only `DagValidator` makes one, so holding one is proof of those properties.
public struct ValidatedDag: Sendable {
    public let dag: Dag
    public let index: GraphIndex
    /// Every task id, each after all its upstream tasks (Kahn's order, ties by input position).
    public let topologicalOrder: [Int32]

    init(dag: Dag, index: GraphIndex, topologicalOrder: [Int32]) {
        self.dag = dag
        self.index = index
        self.topologicalOrder = topologicalOrder
    }

    /// The topological order as keys.
    public var orderedKeys: [TaskKey] { topologicalOrder.map { index.keys[Int($0)] } }

    /// The spec of the task with dense id `id`.
    public func task(id: Int) -> TaskSpec { dag.tasks[Int(index.taskIndices[id])] }
}
