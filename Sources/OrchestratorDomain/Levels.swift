/// Stages of tasks that can run in parallel: level 0 holds the tasks with no upstream task, and each other
/// task sits one level below its deepest upstream task (as-soon-as-possible scheduling).
public enum Levels {
    /// `levelOf[id]` for every task, from one forward pass in topological order.
    public static func levelOf(_ graph: ValidatedDag) -> [Int32] {
        let index = graph.index
        var level = [Int32](repeating: 0, count: index.taskCount)
        level.withUnsafeMutableBufferPointer { lv in
            index.successorOffsets.withUnsafeBufferPointer { off in
                index.successorTargets.withUnsafeBufferPointer { dst in
                    for u in graph.topologicalOrder {
                        let u = Int(u)
                        let next = lv[u] + 1
                        for e in Int(off[u])..<Int(off[u + 1]) where lv[Int(dst[e])] < next {
                            lv[Int(dst[e])] = next
                        }
                    }
                }
            }
        }
        return level
    }

    /// The stages as lists of keys, in input order inside each stage.
    public static func stages(_ graph: ValidatedDag) -> [[TaskKey]] {
        let level = levelOf(graph)
        let depth = Int(level.max() ?? -1) + 1
        var stages = [[TaskKey]](repeating: [], count: depth)
        for id in 0..<level.count { stages[Int(level[id])].append(graph.index.keys[id]) }
        return stages
    }
}
