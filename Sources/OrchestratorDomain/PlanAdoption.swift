/// Why a proposed graph could not be adopted.
public enum PlanAdoptionError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The caller's expected version is not the current one: another update got there first.
    case versionConflict(DagVersionConflict)
    /// The task said to have produced the graph is not in the current version.
    case unknownGenerator(TaskKey)
    /// The merged graph is invalid; every problem is listed.
    case invalid(ValidationFailure)

    public var description: String {
        switch self {
        case .versionConflict(let conflict): conflict.description
        case .unknownGenerator(let key): "task `\(key)` is not in the current DAG version, so it cannot have proposed a graph"
        case .invalid(let failure): "the proposed graph cannot be adopted: \(failure)"
        }
    }
}

/// Validates a graph proposed by an executor (a delegated planner's answer, or tasks generated while
/// running) and merges it into the current version, returning the next version.
///
/// Merge rules:
/// - proposed tasks are added; a proposed key that already exists is an error (existing tasks are never
///   replaced — they may be running or done);
/// - proposed edges may start at existing tasks but may not end at them (that would add a dependency to
///   a task that may already be running);
/// - every proposed task without a proposed upstream task runs after `generator`, and every task that
///   depended on `generator` now also waits for the proposed tasks without proposed downstream tasks, so
///   generated work sits between the generator and its old successors;
/// - duplicate edges are dropped; the merged graph must pass `DagValidator` with `limits`.
///
/// - Parameters:
///   - current: the version the executor saw.
///   - expectedVersion: the version number the caller believes is current (optimistic concurrency).
///   - generator: the task whose result the graph is (the planning task for a delegated plan).
public func adoptDelegatedPlan(
    current: DagVersion, proposed: Dag, expectedVersion: Int, generator: TaskKey,
    limits: ValidationLimits = .default, reason: String? = nil
) throws(PlanAdoptionError) -> DagVersion {
    guard expectedVersion == current.number else {
        throw .versionConflict(DagVersionConflict(expected: current.number, actual: expectedVersion))
    }
    let existing = Set(current.dag.tasks.map(\.key))
    guard existing.contains(generator) else { throw .unknownGenerator(generator) }

    var issues = IssueCollector(cap: limits.maxReportedIssues)
    let freshKeys = Set(proposed.tasks.map(\.key)).subtracting(existing)
    for task in proposed.tasks where existing.contains(task.key) {
        issues.add(.duplicateKey,
                   "proposed task `\(task.key)` already exists in version \(current.number); existing tasks cannot be replaced",
                   keys: [task.key])
    }
    var hasProposedUpstream = Set<TaskKey>()
    var hasProposedDownstream = Set<TaskKey>()
    for (position, edge) in proposed.edges.enumerated() {
        if existing.contains(edge.to) {
            issues.add(.modifiesExistingTask,
                       "proposed edge #\(position) (\(edge)) would add a dependency to existing task `\(edge.to)`",
                       keys: [edge.from, edge.to])
        }
        if freshKeys.contains(edge.from) && freshKeys.contains(edge.to) {
            hasProposedUpstream.insert(edge.to)
            hasProposedDownstream.insert(edge.from)
        }
    }

    var merged = current.dag
    let fresh = proposed.tasks.filter { !existing.contains($0.key) }
    merged.tasks += fresh
    merged.edges += proposed.edges
    let oldSuccessors = current.dag.edges.filter { $0.from == generator }.map(\.to)
    for task in fresh where !hasProposedUpstream.contains(task.key) {
        merged.edges.append(Edge(from: generator, to: task.key))
    }
    for task in fresh where !hasProposedDownstream.contains(task.key) {
        for successor in oldSuccessors { merged.edges.append(Edge(from: task.key, to: successor)) }
    }
    merged = merged.removingDuplicateEdges().dag
    if proposed.tasks.isEmpty {
        issues.add(.emptyGraph, "the proposed graph has no tasks")
    }

    do throws(ValidationFailure) {
        let validated = try DagValidator(limits: limits).validate(merged)
        guard issues.isEmpty else { throw issues.failure }
        return DagVersion(
            number: current.number + 1, dag: validated.dag,
            reason: reason ?? "adopted \(fresh.count) task\(fresh.count == 1 ? "" : "s") proposed by `\(generator)`")
    } catch {
        // Keep our own messages first; drop the validator's duplicate-key reports we already explained.
        for issue in error.issues where !(issue.code == .duplicateKey && issue.taskKeys.allSatisfy(existing.contains)) {
            if !issues.issues.contains(issue) { issues.add(issue.code, issue.message, keys: issue.taskKeys) }
        }
        throw .invalid(issues.failure)
    }
}
