/// A graph with its tasks numbered densely (`0..<taskCount`) and its edges in compressed sparse row form:
/// the successors of task `u` are `successorTargets[successorOffsets[u]..<successorOffsets[u + 1]]`.
///
/// Built once by `DagValidator`; every analysis runs on these flat `Int32` arrays rather than on keys,
/// which is what makes a million-edge graph take milliseconds. Ids are local to one index.
public struct GraphIndex: Sendable {
    /// `keys[id]` is the task's key.
    public var keys: [TaskKey] { table.keys }
    /// `taskIndices[id]` is the task's position in `Dag.tasks`.
    public let taskIndices: [Int32]
    /// `costs[id]` is the task's estimated cost.
    public let costs: [Double]
    public let successorOffsets: [Int32]
    public let successorTargets: [Int32]
    /// Number of upstream tasks of each task.
    public let inDegrees: [Int32]
    let table: KeyTable

    init(
        table: KeyTable, taskIndices: [Int32], costs: [Double], successorOffsets: [Int32],
        successorTargets: [Int32], inDegrees: [Int32]
    ) {
        self.table = table
        self.taskIndices = taskIndices
        self.costs = costs
        self.successorOffsets = successorOffsets
        self.successorTargets = successorTargets
        self.inDegrees = inDegrees
    }

    public var taskCount: Int { table.count }
    public var edgeCount: Int { successorTargets.count }

    public func id(of key: TaskKey) -> Int? {
        let id = table.find(key)
        return id < 0 ? nil : Int(id)
    }

    public func successors(of id: Int) -> ArraySlice<Int32> {
        successorTargets[Int(successorOffsets[id])..<Int(successorOffsets[id + 1])]
    }

    public func outDegree(of id: Int) -> Int { Int(successorOffsets[id + 1] - successorOffsets[id]) }
    public func inDegree(of id: Int) -> Int { Int(inDegrees[id]) }

    /// Builds the CSR arrays from parallel edge endpoint arrays (a counting sort by source, stable).
    static func compress(taskCount n: Int, sources: [Int32], targets: [Int32]) -> (offsets: [Int32], targets: [Int32], inDegrees: [Int32]) {
        var offsets = [Int32](repeating: 0, count: n + 1)
        var inDegrees = [Int32](repeating: 0, count: n)
        let m = sources.count
        var csrTargets = [Int32](repeating: 0, count: m)
        offsets.withUnsafeMutableBufferPointer { off in
            inDegrees.withUnsafeMutableBufferPointer { indeg in
                sources.withUnsafeBufferPointer { src in
                    targets.withUnsafeBufferPointer { dst in
                        for e in 0..<m {
                            off[Int(src[e]) + 1] &+= 1
                            indeg[Int(dst[e])] &+= 1
                        }
                        for u in 0..<n { off[u + 1] &+= off[u] }
                        // Fill using a moving cursor per source, then restore the offsets.
                        csrTargets.withUnsafeMutableBufferPointer { out in
                            for e in 0..<m {
                                let u = Int(src[e])
                                out[Int(off[u])] = dst[e]
                                off[u] &+= 1
                            }
                        }
                        var u = n
                        while u > 0 {
                            off[u] = off[u - 1]
                            u -= 1
                        }
                        off[0] = 0
                    }
                }
            }
        }
        return (offsets, csrTargets, inDegrees)
    }
}
