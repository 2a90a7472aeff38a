public import OrchestratorAPI

/// Problems found while decoding a request, collected rather than thrown one by one so that a caller
/// learns everything wrong with a request from a single answer.
public struct ProblemList: Sendable, Hashable {
    public private(set) var problems: [Orchestrator_V1_ValidationProblem] = []

    public init() {}

    public var isEmpty: Bool { problems.isEmpty }

    public mutating func add(_ code: ProblemCode, _ message: String, keys: [String] = []) {
        problems.append(Orchestrator_V1_ValidationProblem(code: code.rawValue, message: message, taskKeys: keys))
    }

    public mutating func append(contentsOf other: [Orchestrator_V1_ValidationProblem]) {
        problems.append(contentsOf: other)
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
