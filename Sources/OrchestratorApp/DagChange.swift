import OrchestratorDomain

/// A change to a workflow's graph, as UpdateDag describes it.
public struct DagChange: Sendable {
    /// New tasks; the edges into them come in `addEdges` (or from their own dependencies).
    public var addTasks: [TaskSpec]
    public var removeTasks: [TaskKey]
    public var addEdges: [Edge]
    public var removeEdges: [Edge]
    public var payloads: [TaskKey: [UInt8]]

    public init(addTasks: [TaskSpec] = [], removeTasks: [TaskKey] = [], addEdges: [Edge] = [], removeEdges: [Edge] = [], payloads: [TaskKey: [UInt8]] = [:]) {
        self.addTasks = addTasks
        self.removeTasks = removeTasks
        self.addEdges = addEdges
        self.removeEdges = removeEdges
        self.payloads = payloads
    }

    /// Applies the change to `dag`, listing the change's own problems and every reference to
    /// something that is not there.
    public func applied(to dag: Dag, limits: ValidationLimits = .default) throws(AppError) -> Dag {
        let (result, referenceProblems) = applying(to: dag)
        let problems = ownProblems(limits: limits) + referenceProblems
        guard problems.isEmpty else { throw AppError.invalidArgument(Self.listing(problems.map(\.message))) }
        return result
    }

    /// The change applied to `dag` as far as it can be — references to tasks or edges that are not
    /// there change nothing — and those references, so that the caller can report them together
    /// with whatever is wrong with the resulting graph.
    func applying(to dag: Dag) -> (dag: Dag, problems: [ValidationIssue]) {
        var problems: [ValidationIssue] = []
        let existing = Set(dag.tasks.map(\.key))
        let removed = Set(removeTasks)
        // An empty key is the request's own problem (`ownProblems`), not a missing task.
        for key in removeTasks where !key.rawValue.isEmpty && !existing.contains(key) {
            problems.append(ValidationIssue(
                code: .unknownTask, message: "remove_tasks names \"\(key.rawValue)\", which is not in the current DAG", taskKeys: [key]))
        }
        // Named here, by the field, rather than by the validator's positions in the merged graph
        // ("task #6 reuses key `g` already used by task #0"), which the caller never sent. A key
        // named twice in add_tasks, or in remove_tasks too, is the request's own problem.
        var seen = existing.subtracting(removed)
        var added: [TaskSpec] = []
        for task in addTasks {
            if seen.insert(task.key).inserted {
                added.append(task)
            } else if !removed.contains(task.key), existing.contains(task.key) {
                problems.append(ValidationIssue(
                    code: .duplicateKey, message: "add_tasks names \"\(task.key.rawValue)\", which is already a task of the current DAG",
                    taskKeys: [task.key]))
            }
        }
        let edges = Set(dag.edges)
        for edge in removeEdges where !edges.contains(edge) {
            problems.append(ValidationIssue(
                code: .unknownTask, message: "remove_edges names \(edge.from.rawValue) → \(edge.to.rawValue), which is not in the current DAG",
                taskKeys: [edge.from, edge.to]))
        }
        let droppedEdges = Set(removeEdges)
        // An edge added again within the update (add_edges, a new task's depends_on) is dropped,
        // as planners drop a repeated dependency; one that is already there is named here, where
        // the validator would call it "listed more than once" although the caller listed it once.
        var keptEdges = edges.subtracting(droppedEdges).filter { !removed.contains($0.from) && !removed.contains($0.to) }
        var addedEdges: [Edge] = []
        var addedOnce = Set<Edge>()
        for edge in addEdges where addedOnce.insert(edge).inserted {
            // An edge of a task the update removes (from add_edges or an added task's depends_on),
            // named as such: it was "already in the current DAG" or an edge to an unknown task at
            // a position of the merged graph (found by black-box testing).
            if let gone = [edge.from, edge.to].first(where: removed.contains) {
                problems.append(ValidationIssue(
                    code: .unknownTask,
                    message: "the update adds \(edge.from.rawValue) → \(edge.to.rawValue), but remove_tasks removes \"\(gone.rawValue)\"",
                    taskKeys: [edge.from, edge.to]))
            } else if keptEdges.insert(edge).inserted {
                addedEdges.append(edge)
            } else {
                problems.append(ValidationIssue(
                    code: .duplicateEdge,
                    message: "the update adds \(edge.from.rawValue) → \(edge.to.rawValue), which is already in the current DAG",
                    taskKeys: [edge.from, edge.to]))
            }
        }
        var result = Dag()
        result.tasks = dag.tasks.filter { !removed.contains($0.key) } + added
        result.edges = dag.edges.filter { !droppedEdges.contains($0) && !removed.contains($0.from) && !removed.contains($0.to) } + addedEdges
        return (result, problems)
    }

    /// What is wrong with the change whatever the workflow's graph: checked before the workflow
    /// is read, so that a malformed request is INVALID_ARGUMENT whatever the workflow's state
    /// (it was NOT_FOUND, FAILED_PRECONDITION or ABORTED depending on it; found by black-box
    /// testing). Its added tasks are validated on their own: keys, costs, capabilities, retry
    /// policies, metadata (positions are theirs in add_tasks).
    public func ownProblems(limits: ValidationLimits) -> [ValidationIssue] {
        var problems: [ValidationIssue] = []
        if removeTasks.contains(where: { $0.rawValue.isEmpty }) {
            problems.append(ValidationIssue(code: .emptyKey, message: "remove_tasks names an empty key"))
        }
        let removed = Set(removeTasks)
        // Stored tasks are matched by key, so a key removed and added back in one update kept the
        // old task — its id, attempts, retry backoff and last error — under the new spec (found
        // by black-box testing). A replacement is two updates.
        for task in addTasks where removed.contains(task.key) {
            problems.append(ValidationIssue(
                code: .duplicateKey,
                message: "add_tasks and remove_tasks both name \"\(task.key.rawValue)\": a task cannot be removed and added back in "
                    + "one update; remove it in one update and add the new one in the next",
                taskKeys: [task.key]))
        }
        var named = Set<TaskKey>()
        var reported = Set<TaskKey>()
        for task in addTasks where !named.insert(task.key).inserted && !removed.contains(task.key) && reported.insert(task.key).inserted {
            problems.append(ValidationIssue(
                code: .duplicateKey, message: "add_tasks names \"\(task.key.rawValue)\" more than once", taskKeys: [task.key]))
        }
        if !addTasks.isEmpty {
            do {
                _ = try DagValidator(limits: limits).validate(Dag(tasks: addTasks))
            } catch {
                // An empty graph is what an edge-only update's tasks are; repeated keys are named above.
                problems += error.issues.filter { $0.code != .emptyGraph && $0.code != .duplicateKey }
            }
        }
        return problems
    }

    /// `more` without the problems `own` already names (the merged graph's validation finds an
    /// added task's bad key or cost again, at another position).
    public static func withoutRepeats(_ more: [ValidationIssue], of own: [ValidationIssue]) -> [ValidationIssue] {
        struct Named: Hashable { var code: ValidationCode; var keys: [TaskKey] }
        let named = Set(own.map { Named(code: $0.code, keys: $0.taskKeys) })
        return more.filter { !named.contains(Named(code: $0.code, keys: $0.taskKeys)) }
    }

    static func listing(_ problems: [String]) -> String {
        "invalid DAG update: \(problems.count) problem\(problems.count == 1 ? "" : "s"): " + problems.joined(separator: "; ")
    }

    public var isEmpty: Bool { addTasks.isEmpty && removeTasks.isEmpty && addEdges.isEmpty && removeEdges.isEmpty }

    public static let changesNothing = "the update changes nothing: give add_tasks, remove_tasks, add_edges or remove_edges"
    public static let versionRequired = "expected_version must be the version the change is based on (≥ 1)"

    /// The change with its new tasks inheriting the workflow query's priority and labels, as
    /// the tasks planned with the workflow did.
    func inheriting(from query: Query) -> DagChange {
        var change = self
        change.addTasks = addTasks.map(query.inherited(by:))
        return change
    }
}
