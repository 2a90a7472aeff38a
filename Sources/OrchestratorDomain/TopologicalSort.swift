/// Kahn's algorithm over CSR arrays.
public enum TopologicalSort {
    /// Tasks in dependency order: every task after all its upstream tasks. Ties go to the lower id (the
    /// earlier task in the input), so the order is deterministic and roughly level by level.
    ///
    /// Returns fewer than `taskCount` ids when the graph has a cycle: the missing tasks are on a cycle or
    /// downstream of one. The output array doubles as the queue, so the sort allocates two arrays.
    public static func kahn(_ index: GraphIndex) -> [Int32] {
        kahn(taskCount: index.taskCount, offsets: index.successorOffsets, targets: index.successorTargets,
             inDegrees: index.inDegrees)
    }

    static func kahn(taskCount n: Int, offsets: [Int32], targets: [Int32], inDegrees: [Int32]) -> [Int32] {
        var remaining = inDegrees
        var order = [Int32](repeating: 0, count: n)
        var tail = 0
        remaining.withUnsafeMutableBufferPointer { rem in
            order.withUnsafeMutableBufferPointer { queue in
                offsets.withUnsafeBufferPointer { off in
                    targets.withUnsafeBufferPointer { dst in
                        for u in 0..<n where rem[u] == 0 {
                            queue[tail] = Int32(truncatingIfNeeded: u)
                            tail += 1
                        }
                        var head = 0
                        while head < tail {
                            let u = Int(queue[head])
                            head += 1
                            var e = Int(off[u])
                            let end = Int(off[u + 1])
                            while e < end {
                                let v = Int(dst[e])
                                rem[v] &-= 1
                                if rem[v] == 0 {
                                    queue[tail] = Int32(truncatingIfNeeded: v)
                                    tail += 1
                                }
                                e += 1
                            }
                        }
                    }
                }
            }
        }
        order.removeLast(n - tail)
        return order
    }
}
