/// Names cycles so that a user can break them: one cycle per strongly connected component.
///
/// Runs only on the tasks Kahn's algorithm could not order (those on or below a cycle). An iterative
/// Tarjan pass finds the components (no recursion: a cycle may be a million tasks long), then a BFS inside
/// each component finds the shortest cycle through its lowest id. Linear in the tasks and edges looked at.
enum CycleFinder {
    static func cycles(in index: GraphIndex, unordered: [Bool]) -> [[Int32]] {
        cycles(taskCount: index.taskCount, offsets: index.successorOffsets, targets: index.successorTargets,
               candidate: unordered)
    }

    static func cycles(taskCount n: Int, offsets: [Int32], targets: [Int32], candidate: [Bool]) -> [[Int32]] {
        var order = [Int32](repeating: -1, count: n)  // Tarjan discovery index
        var low = [Int32](repeating: 0, count: n)
        var onStack = [Bool](repeating: false, count: n)
        var component = [Int32](repeating: -1, count: n)
        var sccStack: [Int32] = []
        var frames: [(node: Int32, edge: Int32)] = []
        var counter: Int32 = 0
        var componentCount: Int32 = 0
        var roots: [Int32] = []  // lowest id of each component of size >= 2

        for start in 0..<n where candidate[start] && order[start] == -1 {
            order[start] = counter
            low[start] = counter
            counter += 1
            sccStack.append(Int32(start))
            onStack[start] = true
            frames.append((Int32(start), offsets[start]))
            while let top = frames.last {
                let v = Int(top.node)
                if top.edge < offsets[v + 1] {
                    frames[frames.count - 1].edge += 1
                    let w = Int(targets[Int(top.edge)])
                    guard candidate[w] else { continue }
                    if order[w] == -1 {
                        order[w] = counter
                        low[w] = counter
                        counter += 1
                        sccStack.append(Int32(w))
                        onStack[w] = true
                        frames.append((Int32(w), offsets[w]))
                    } else if onStack[w] {
                        low[v] = min(low[v], order[w])
                    }
                    continue
                }
                frames.removeLast()
                if let parent = frames.last { low[Int(parent.node)] = min(low[Int(parent.node)], low[v]) }
                guard low[v] == order[v] else { continue }
                var size = 0
                var lowest = Int32.max
                while true {
                    let w = sccStack.removeLast()
                    onStack[Int(w)] = false
                    component[Int(w)] = componentCount
                    size += 1
                    lowest = min(lowest, w)
                    if Int(w) == v { break }
                }
                if size >= 2 { roots.append(lowest) }
                componentCount += 1
            }
        }

        // Shortest cycle through each root, by BFS restricted to the root's component.
        var parent = [Int32](repeating: -1, count: n)
        var result: [[Int32]] = []
        roots.sort()
        for root in roots {
            let comp = component[Int(root)]
            var queue: [Int32] = [root]
            var head = 0
            parent[Int(root)] = root
            var closing: Int32 = -1
            search: while head < queue.count {
                let u = Int(queue[head])
                head += 1
                for e in Int(offsets[u])..<Int(offsets[u + 1]) {
                    let w = Int(targets[e])
                    guard component[w] == comp else { continue }
                    if w == Int(root) {
                        closing = Int32(u)
                        break search
                    }
                    if parent[w] == -1 {
                        parent[w] = Int32(u)
                        queue.append(Int32(w))
                    }
                }
            }
            // A component of size >= 2 always has a cycle through each of its nodes.
            guard closing >= 0 else { continue }
            var path: [Int32] = []
            var node = closing
            while node != root {
                path.append(node)
                node = parent[Int(node)]
            }
            path.append(root)
            result.append(path.reversed())
        }
        return result
    }
}
