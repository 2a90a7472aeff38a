/// Checks a graph and reports every problem at once, in time linear in tasks plus edges.
///
/// Order of work: size limits, per-task checks and key interning (duplicates), per-edge resolution
/// (unknown references, self-loops), CSR construction, duplicate edges and fan-in/fan-out (one pass over
/// the CSR with a stamp array), then Kahn's algorithm; tasks it cannot order go to `CycleFinder`, which names one
/// cycle per strongly connected component. Edges that are already known to be wrong are left out of the
/// later passes, so one mistake yields one message rather than a cascade.
///
/// One exception to "every problem at once": a graph more than twice over the task or edge limit is
/// rejected with its size problems alone, so that oversized input costs no more than reading its counts.
public struct DagValidator: Sendable {
    public var limits: ValidationLimits

    public init(limits: ValidationLimits = .default) { self.limits = limits }

    public func validate(_ dag: Dag) throws(ValidationFailure) -> ValidatedDag {
        var issues = IssueCollector(cap: limits.maxReportedIssues)
        let tasks = dag.tasks
        let n = tasks.count
        if n == 0 {
            issues.add(.emptyGraph, "the graph has no tasks; a workflow needs at least one task")
        }
        if n > limits.maxTasks {
            issues.add(.tooManyTasks, "the graph has \(n) tasks; the limit is \(limits.maxTasks)")
        }
        if dag.edges.count > limits.maxEdges {
            issues.add(.tooManyEdges, "the graph has \(dag.edges.count) edges; the limit is \(limits.maxEdges)")
        }
        // "More than twice over": n > 2 × limit, written so that it cannot overflow (integer halving
        // let 21 tasks through a limit of 10).
        if n - limits.maxTasks > limits.maxTasks || dag.edges.count - limits.maxEdges > limits.maxEdges { throw issues.failure }

        // Tasks: field checks and interning. Ids go to first occurrences only.
        var table = KeyTable(capacity: n)
        var taskIndices: [Int32] = []
        var costs: [Double] = []
        taskIndices.reserveCapacity(n)
        costs.reserveCapacity(n)
        var metadataBytes = 0
        for position in 0..<n {
            let task = tasks[position]
            metadataBytes += checkTask(task, position: position, into: &issues)
            let (id, inserted) = table.insert(task.key)
            if inserted {
                taskIndices.append(Int32(truncatingIfNeeded: position))
                costs.append(task.estimatedCost)
            } else {
                let first = Int(taskIndices[Int(id)])
                issues.add(.duplicateKey,
                           "task #\(position) reuses key `\(task.key)` already used by task #\(first); keys must be unique",
                           keys: [task.key])
            }
        }

        // The query's labels are copied onto every task: 30 KB of them on 2,000 tasks (a 47 KB
        // request) grew the database by 126 MB, and on 8,000 tasks (131 KB) the server built 1.6 GB
        // of rows before PostgreSQL refused the graph's JSON (INTERNAL).
        if metadataBytes > limits.maxMetadataBytesPerGraph {
            issues.add(.metadataTooLarge,
                       "the graph's tasks carry \(metadataBytes) bytes of labels and metadata in all (each task's own and the "
                           + "query's labels, which every task inherits); the limit for a graph is \(limits.maxMetadataBytesPerGraph): "
                           + "keep values the tasks share in the query's inputs, which are stored once")
        }

        // Each cost can be finite and their sum not (two of 1e308): the plan's total and critical
        // path are stored and shown, and an infinite total failed the submission as INTERNAL.
        let total = costs.reduce(0) { $1.isFinite && $1 >= 0 ? $0 + $1 : $0 }
        if !total.isFinite {
            issues.add(.invalidCost,
                       "the tasks' estimated costs add up to more than \(Double.greatestFiniteMagnitude); use smaller costs")
        }

        // Edges: resolve both ends; only a graph with bad edges pays for compacting the arrays.
        let edges = dag.edges
        var (sources, targets) = table.resolve(edges)
        var kept = 0
        for position in 0..<edges.count {
            let from = sources[position]
            let to = targets[position]
            guard from >= 0, to >= 0, from != to else {
                let edge = edges[position]
                if from < 0 || to < 0 {
                    issues.add(.unknownTask, Self.unknownMessage(edge, position: position, fromKnown: from >= 0, toKnown: to >= 0),
                               keys: [from < 0 ? edge.from : nil, to < 0 ? edge.to : nil].compactMap { $0 })
                } else {
                    issues.add(.selfLoop, "edge #\(position) (\(edge)) makes task `\(edge.from)` depend on itself",
                               keys: [edge.from])
                }
                continue
            }
            if kept != position {
                sources[kept] = from
                targets[kept] = to
            }
            kept += 1
        }
        if kept < edges.count {
            sources.removeLast(edges.count - kept)
            targets.removeLast(edges.count - kept)
        }

        let unique = table.count
        let keys = table.keys
        let csr = GraphIndex.compress(taskCount: unique, sources: sources, targets: targets)
        sources = []
        targets = []
        checkDegrees(keys: keys, offsets: csr.offsets, targets: csr.targets, inDegrees: csr.inDegrees, into: &issues)

        let index = GraphIndex(
            table: table, taskIndices: taskIndices, costs: costs, successorOffsets: csr.offsets,
            successorTargets: csr.targets, inDegrees: csr.inDegrees)
        let order = TopologicalSort.kahn(index)
        if order.count < unique {
            var unordered = [Bool](repeating: true, count: unique)
            for id in order { unordered[Int(id)] = false }
            for cycle in CycleFinder.cycles(in: index, unordered: unordered) {
                issues.add(.cycle, Self.cycleMessage(cycle.map { keys[Int($0)] }),
                           keys: cycle.map { keys[Int($0)] })
            }
        }

        if order.count == unique, unique > 0, limits.maxDepth < unique {
            checkDepth(index: index, order: order, keys: keys, into: &issues)
        }

        guard issues.isEmpty else { throw issues.failure }
        return ValidatedDag(dag: dag, index: index, topologicalOrder: order)
    }

    /// The longest chain, by dynamic programming over the topological order (linear); names the
    /// task at the end of the first chain found over the limit. Skipped when the graph has fewer
    /// tasks than the limit, since no chain can then be too long.
    private func checkDepth(index: GraphIndex, order: [Int32], keys: [TaskKey], into issues: inout IssueCollector) {
        var depth = [Int32](repeating: 1, count: keys.count)
        var deepest = (depth: Int32(0), task: 0)
        for id in order {
            let u = Int(id)
            let next = depth[u] + 1
            for v in index.successors(of: u) where depth[Int(v)] < next { depth[Int(v)] = next }
            if depth[u] > deepest.depth { deepest = (depth[u], u) }
        }
        if Int(deepest.depth) > limits.maxDepth {
            issues.add(.tooDeep,
                       "the longest dependency chain has \(deepest.depth) tasks (ending at `\(keys[deepest.task])`); the depth limit is \(limits.maxDepth)",
                       keys: [keys[deepest.task]])
        }
    }

    /// Checks one task's fields; returns the bytes of its labels and metadata (the graph's total is bounded too).
    private func checkTask(_ task: TaskSpec, position: Int, into issues: inout IssueCollector) -> Int {
        let key = task.key.rawValue
        var length = 0
        var badByte: (offset: Int, byte: UInt8)?
        for byte in key.utf8 {
            if badByte == nil, !limits.keyCharset.allows(byte) { badByte = (length, byte) }
            length += 1
        }
        if length == 0 {
            issues.add(.emptyKey, "task #\(position) has an empty key")
        } else if length > limits.maxKeyLength {
            issues.add(.keyTooLong,
                       "task #\(position) key `\(Self.abbreviate(key))` is \(length) bytes long; the limit is \(limits.maxKeyLength)",
                       keys: [task.key])
        }
        if let badByte {
            issues.add(.invalidKeyCharacter,
                       "task #\(position) key `\(key)` has \(Self.describe(byte: badByte.byte, in: key, at: badByte.offset)) at byte \(badByte.offset); keys may contain only \(limits.keyCharset.description)",
                       keys: [task.key])
        }
        if !task.estimatedCost.isFinite || task.estimatedCost < 0 {
            issues.add(.invalidCost,
                       "task `\(task.key)` has estimated cost \(task.estimatedCost); it must be a finite number ≥ 0",
                       keys: [task.key])
        }
        if let bad = task.requiredCapabilities.first(where: { $0.isEmpty || $0.utf8.count > limits.maxCapabilityLength }) {
            issues.add(.invalidCapability,
                       "task `\(task.key)` requires capability `\(Self.abbreviate(bad))` (\(bad.utf8.count) bytes); capabilities must be 1-\(limits.maxCapabilityLength) bytes",
                       keys: [task.key])
        } else if task.requiredCapabilities.count > limits.maxCapabilitiesPerTask {
            issues.add(.invalidCapability,
                       "task `\(task.key)` requires \(task.requiredCapabilities.count) capabilities; the limit is \(limits.maxCapabilitiesPerTask)",
                       keys: [task.key])
        }
        if task.retry.maxAttempts < 1 {
            issues.add(.invalidRetryPolicy,
                       "task `\(task.key)` allows \(task.retry.maxAttempts) attempts; it must allow at least 1",
                       keys: [task.key])
        }
        var bytes = 0
        if !task.labels.isEmpty || !task.metadata.isEmpty {
            for (k, v) in task.labels { bytes += k.utf8.count + v.utf8.count }
            for (k, v) in task.metadata { bytes += k.utf8.count + v.utf8.count }
            if bytes > limits.maxMetadataBytesPerTask {
                issues.add(.metadataTooLarge,
                           // The query's labels are copied onto every task before validation: said, as
                           // a caller who set only those would not recognise "this task's labels"
                           // (found by black-box testing).
                           "task `\(task.key)` carries \(bytes) bytes of labels and metadata (its own and the query's labels, "
                               + "which every task inherits); the limit is \(limits.maxMetadataBytesPerTask)",
                           keys: [task.key])
            }
        }
        return bytes
    }

    /// Duplicate edges and fan-in/fan-out, in one pass: `stamp[v] == u` means edge u → v was already seen.
    private func checkDegrees(
        keys: [TaskKey], offsets: [Int32], targets: [Int32], inDegrees: [Int32], into issues: inout IssueCollector
    ) {
        let n = keys.count
        var stamp = [Int32](repeating: -1, count: n)
        stamp.withUnsafeMutableBufferPointer { seen in
            offsets.withUnsafeBufferPointer { off in
                targets.withUnsafeBufferPointer { dst in
                    for u in 0..<n {
                        let begin = Int(off[u])
                        let end = Int(off[u + 1])
                        if end - begin > limits.maxFanOut {
                            issues.add(.fanOutExceeded,
                                       "task `\(keys[u])` has \(end - begin) downstream tasks; the fan-out limit is \(limits.maxFanOut)",
                                       keys: [keys[u]])
                        }
                        let mark = Int32(truncatingIfNeeded: u)
                        for e in begin..<end {
                            let v = Int(dst[e])
                            if seen[v] == mark {
                                issues.add(.duplicateEdge,
                                           "edge `\(keys[u]) → \(keys[v])` is listed more than once",
                                           keys: [keys[u], keys[v]])
                            }
                            seen[v] = mark
                        }
                    }
                }
            }
        }
        for v in 0..<n where Int(inDegrees[v]) > limits.maxFanIn {
            issues.add(.fanInExceeded,
                       "task `\(keys[v])` has \(inDegrees[v]) upstream tasks; the fan-in limit is \(limits.maxFanIn)",
                       keys: [keys[v]])
        }
    }

    static func unknownMessage(_ edge: Edge, position: Int, fromKnown: Bool, toKnown: Bool) -> String {
        switch (fromKnown, toKnown) {
        case (false, false):
            "edge #\(position) (\(edge)) refers to unknown tasks `\(edge.from)` (its source) and `\(edge.to)` (its target)"
        case (false, true):
            "edge #\(position) (\(edge)) refers to unknown task `\(edge.from)` (its source)"
        default:
            "edge #\(position) (\(edge)) refers to unknown task `\(edge.to)` (its target)"
        }
    }

    /// `a → b → c → a (3 tasks)`; very long cycles keep their first and last keys and elide the middle.
    static func cycleMessage(_ path: [TaskKey]) -> String {
        let shown: [String]
        if path.count <= 24 {
            shown = path.map(\.rawValue)
        } else {
            shown = path.prefix(12).map(\.rawValue) + ["… \(path.count - 22) more …"] + path.suffix(10).map(\.rawValue)
        }
        let tasks = path.count == 1 ? "1 task" : "\(path.count) tasks"
        return "cycle: \((shown + [path[0].rawValue]).joined(separator: " → ")) (\(tasks)); remove one of these dependencies"
    }

    static func abbreviate(_ key: String) -> String {
        key.count <= 40 ? key : String(key.prefix(32)) + "…"
    }

    static func describe(byte: UInt8, in key: String, at offset: Int) -> String {
        if byte < 0x80 {
            let scalar = Unicode.Scalar(byte)
            let hex = String(byte, radix: 16, uppercase: true)
            let code = "U+" + String(repeating: "0", count: 4 - hex.count) + hex
            return byte >= 0x20 && byte < 0x7F ? "'\(Character(scalar))' (\(code))" : "a control character (\(code))"
        }
        return "a non-ASCII character"
    }
}
