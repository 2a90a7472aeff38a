/// The most expensive chain of dependent tasks: no schedule, however many executors, finishes sooner.
public struct CriticalPath: Hashable, Sendable {
    /// Sum of the estimated costs of the tasks on the path.
    public var length: Double
    /// The path's task ids, upstream first.
    public var ids: [Int32]
    /// The path's keys, upstream first.
    public var keys: [TaskKey]
}

/// Remaining-path ranks and the critical path, from one dynamic-programming pass in reverse
/// topological order (linear in tasks plus edges).
public enum CriticalPathAnalysis {
    /// `ranks[id]` = the task's cost plus the most expensive chain below it: the cost still ahead once the
    /// task may start. It is the dispatcher's second ordering key, after explicit priority.
    public static func ranks(_ graph: ValidatedDag) -> [Double] {
        let index = graph.index
        let n = index.taskCount
        var ranks = [Double](repeating: 0, count: n)
        ranks.withUnsafeMutableBufferPointer { rank in
            index.costs.withUnsafeBufferPointer { cost in
                index.successorOffsets.withUnsafeBufferPointer { off in
                    index.successorTargets.withUnsafeBufferPointer { dst in
                        graph.topologicalOrder.withUnsafeBufferPointer { order in
                            var i = n - 1
                            while i >= 0 {
                                let u = Int(order[i])
                                var best = 0.0
                                var e = Int(off[u])
                                let end = Int(off[u + 1])
                                while e < end {
                                    let r = rank[Int(dst[e])]
                                    if r > best { best = r }
                                    e += 1
                                }
                                rank[u] = cost[u] + best
                                i -= 1
                            }
                        }
                    }
                }
            }
        }
        return ranks
    }

    /// The critical path, walked down from the highest-ranked task along highest-ranked successors.
    /// Ties go to the lower id (earlier in the input), so the answer is deterministic.
    public static func criticalPath(_ graph: ValidatedDag, ranks: [Double]) -> CriticalPath {
        let index = graph.index
        guard index.taskCount > 0 else { return CriticalPath(length: 0, ids: [], keys: []) }
        var start = 0
        for id in 1..<index.taskCount where ranks[id] > ranks[start] { start = id }
        var path: [Int32] = [Int32(start)]
        var u = start
        while true {
            var next = -1
            for v in index.successors(of: u) {
                let v = Int(v)
                if next == -1 || ranks[v] > ranks[next] || (ranks[v] == ranks[next] && v < next) { next = v }
            }
            if next == -1 { break }
            path.append(Int32(next))
            u = next
        }
        return CriticalPath(length: ranks[start], ids: path, keys: path.map { index.keys[Int($0)] })
    }

    public static func criticalPath(_ graph: ValidatedDag) -> CriticalPath {
        criticalPath(graph, ranks: ranks(graph))
    }
}
