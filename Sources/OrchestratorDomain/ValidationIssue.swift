/// What kind of problem a validation issue is. The raw values are stable: API errors and tests use them.
public enum ValidationCode: String, Hashable, Sendable, Codable, CaseIterable {
    case emptyGraph = "empty_graph"
    case duplicateKey = "duplicate_key"
    case emptyKey = "empty_key"
    case keyTooLong = "key_too_long"
    case invalidKeyCharacter = "invalid_key_character"
    case invalidCost = "invalid_cost"
    case invalidRetryPolicy = "invalid_retry_policy"
    case metadataTooLarge = "metadata_too_large"
    /// A required capability no executor could advertise (empty, too long), or too many of them:
    /// such a task could never be leased and would wait forever.
    case invalidCapability = "invalid_capability"
    case unknownTask = "unknown_task"
    case selfLoop = "self_loop"
    case duplicateEdge = "duplicate_edge"
    case cycle = "cycle"
    case tooManyTasks = "too_many_tasks"
    case tooManyEdges = "too_many_edges"
    case fanInExceeded = "fan_in_exceeded"
    case fanOutExceeded = "fan_out_exceeded"
    /// The longest dependency chain has more tasks than `ValidationLimits.maxDepth`.
    case tooDeep = "too_deep"
    /// Adopting a proposed graph would change a task that already exists (see `adoptDelegatedPlan`).
    case modifiesExistingTask = "modifies_existing_task"
    /// The graph breaks the query's constraints (`max_tasks`, `max_total_cost`, the allowed and
    /// forbidden capabilities): a DAG update's result.
    case constraintViolated = "constraint_violated"
}

/// One problem found in a graph: a code for programs, a message for people, the task keys involved.
public struct ValidationIssue: Hashable, Sendable, CustomStringConvertible {
    public var code: ValidationCode
    public var message: String
    /// The keys the message is about, in the order it names them (a cycle lists its path).
    public var taskKeys: [TaskKey]

    public init(code: ValidationCode, message: String, taskKeys: [TaskKey] = []) {
        self.code = code
        self.message = message
        self.taskKeys = taskKeys
    }

    public var description: String { "\(code.rawValue): \(message)" }
}

/// Validation found problems. Carries every issue (up to the reporting cap) and the total count.
public struct ValidationFailure: Error, Hashable, Sendable, CustomStringConvertible {
    public var issues: [ValidationIssue]
    /// Every issue found, including those beyond `issues` (capped by `ValidationLimits.maxReportedIssues`).
    public var totalIssueCount: Int

    public init(issues: [ValidationIssue], totalIssueCount: Int? = nil) {
        self.issues = issues
        self.totalIssueCount = totalIssueCount ?? issues.count
    }

    public var codes: Set<ValidationCode> { Set(issues.map(\.code)) }

    public var description: String {
        var lines = ["the graph is invalid (\(totalIssueCount) problem\(totalIssueCount == 1 ? "" : "s")):"]
        lines += issues.map { "  - \($0)" }
        if totalIssueCount > issues.count { lines.append("  … and \(totalIssueCount - issues.count) more") }
        return lines.joined(separator: "\n")
    }
}

/// Collects issues up to a cap while counting all of them.
struct IssueCollector {
    let cap: Int
    private(set) var issues: [ValidationIssue] = []
    private(set) var total = 0

    init(cap: Int) { self.cap = max(1, cap) }

    var isEmpty: Bool { total == 0 }
    var isFull: Bool { issues.count >= cap }

    /// The message is an autoclosure so that issues beyond the cap cost nothing to describe.
    mutating func add(_ code: ValidationCode, _ message: @autoclosure () -> String, keys: @autoclosure () -> [TaskKey] = []) {
        total += 1
        if issues.count < cap { issues.append(ValidationIssue(code: code, message: message(), taskKeys: keys())) }
    }

    var failure: ValidationFailure { ValidationFailure(issues: issues, totalIssueCount: total) }
}
