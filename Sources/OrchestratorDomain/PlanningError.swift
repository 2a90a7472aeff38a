/// Why a query could not be planned. `code` is for programs (and the gRPC status mapping), `message` is
/// precise enough to fix the query without reading code.
public struct PlanningError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Code: String, Hashable, Sendable, CaseIterable {
        /// The query lacks what the chosen planner needs, or contradicts itself.
        case invalidQuery = "invalid_query"
        /// The graph (given or produced) failed validation; see `issues`.
        case invalidGraph = "invalid_graph"
        /// Free text matched no intent rule and no structured goal was given.
        case noGoal = "no_goal"
        /// No combination of capabilities reaches the goal from the inputs; see `missingArtifacts`.
        case unreachableGoal = "unreachable_goal"
        /// A plan exists but breaks the query's constraints (cost, size).
        case constraintViolated = "constraint_violated"
        /// The query asked for a planner that is not registered.
        case unknownPlanner = "unknown_planner"
    }

    public var code: Code
    public var message: String
    public var issues: [ValidationIssue]
    /// For `unreachableGoal`: artifacts nobody produces and the query did not provide.
    public var missingArtifacts: [String]

    public init(_ code: Code, _ message: String, issues: [ValidationIssue] = [], missingArtifacts: [String] = []) {
        self.code = code
        self.message = message
        self.issues = issues
        self.missingArtifacts = missingArtifacts
    }

    public var description: String { "\(code.rawValue): \(message)" }
}
