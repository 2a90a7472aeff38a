public import OrchestratorAPI

/// Problems found while decoding a request, collected rather than thrown one by one so that a caller
/// learns everything wrong with a request from a single answer. Like the domain validator, it counts
/// every problem but keeps only the first `cap` (a request with a million bad references should not
/// build a million messages).
public struct ProblemList: Sendable, Hashable {
    public private(set) var problems: [Orchestrator_V1_ValidationProblem] = []
    /// Every problem added, including those beyond `cap`.
    public private(set) var totalCount = 0
    public let cap: Int

    public init(cap: Int = 100) { self.cap = max(1, cap) }

    public var isEmpty: Bool { totalCount == 0 }

    /// The message is an autoclosure so that problems beyond the cap cost nothing to describe.
    public mutating func add(_ code: ProblemCode, _ message: @autoclosure () -> String, keys: @autoclosure () -> [String] = []) {
        totalCount += 1
        if problems.count < cap {
            problems.append(Orchestrator_V1_ValidationProblem(code: code.rawValue, message: message(), taskKeys: keys()))
        }
    }

    /// Adds problems found elsewhere (the domain validator's), of which `total` were found in all.
    public mutating func append(contentsOf other: [Orchestrator_V1_ValidationProblem], total: Int? = nil) {
        totalCount += max(total ?? other.count, other.count)
        problems.append(contentsOf: other.prefix(max(0, cap - problems.count)))
    }
}

/// The stable problem codes of `ValidationProblem.code` (see dag.proto). Raw values are API: never rename.
public enum ProblemCode: String, Sendable, Hashable, CaseIterable {
    case emptyGraph = "EMPTY_GRAPH"
    case duplicateKey = "DUPLICATE_KEY"
    case invalidKey = "INVALID_KEY"
    case invalidCost = "INVALID_COST"
    case invalidRetryPolicy = "INVALID_RETRY_POLICY"
    case unknownDependency = "UNKNOWN_DEPENDENCY"
    case selfLoop = "SELF_LOOP"
    case duplicateDependency = "DUPLICATE_DEPENDENCY"
    case cycle = "CYCLE"
    case limitExceeded = "LIMIT_EXCEEDED"
    case modifiesExistingTask = "MODIFIES_EXISTING_TASK"
    /// A numeric field out of range or an enum value this server does not know.
    case invalidField = "INVALID_FIELD"
    case invalidQuery = "INVALID_QUERY"
    case noGoal = "NO_GOAL"
    case unreachableGoal = "UNREACHABLE_GOAL"
    case constraintViolated = "CONSTRAINT_VIOLATED"
    case unknownPlanner = "UNKNOWN_PLANNER"
}

/// A request failed validation at the edge (before or instead of planning). Carries every problem.
public struct RequestValidationError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What was invalid, for the status message: "invalid query", "invalid DAG".
    public var subject: String
    public var problems: [Orchestrator_V1_ValidationProblem]
    /// Every problem found, including any beyond `problems` (the domain validator caps its list).
    public var totalCount: Int

    public init(subject: String, problems: [Orchestrator_V1_ValidationProblem], totalCount: Int? = nil) {
        self.subject = subject
        self.problems = problems
        self.totalCount = max(totalCount ?? problems.count, problems.count)
    }

    public var description: String { StatusMapping.listing(subject, problems.map(\.message), total: totalCount) }
}
