public import OrchestratorAPI
public import OrchestratorDomain

extension ProblemCode {
    /// The API code of a domain validation code. Exhaustive on purpose: a new domain code must choose
    /// its API code here.
    public init(_ code: ValidationCode) {
        switch code {
        case .emptyGraph: self = .emptyGraph
        case .duplicateKey: self = .duplicateKey
        case .emptyKey, .keyTooLong, .invalidKeyCharacter: self = .invalidKey
        case .invalidCost: self = .invalidCost
        case .invalidRetryPolicy: self = .invalidRetryPolicy
        case .invalidCapability: self = .invalidField
        case .metadataTooLarge, .tooManyTasks, .tooManyEdges, .fanInExceeded, .fanOutExceeded, .tooDeep: self = .limitExceeded
        case .unknownTask: self = .unknownDependency
        case .selfLoop: self = .selfLoop
        case .duplicateEdge: self = .duplicateDependency
        case .cycle: self = .cycle
        case .modifiesExistingTask: self = .modifiesExistingTask
        case .constraintViolated: self = .constraintViolated
        }
    }

    /// The API code of a planning failure that is not about the graph's shape.
    public init(_ code: PlanningError.Code) {
        switch code {
        case .invalidQuery: self = .invalidQuery
        case .invalidGraph: self = .invalidQuery
        case .noGoal: self = .noGoal
        case .unreachableGoal: self = .unreachableGoal
        case .constraintViolated: self = .constraintViolated
        case .unknownPlanner: self = .unknownPlanner
        }
    }
}

extension Orchestrator_V1_ValidationProblem {
    public init(_ issue: ValidationIssue) {
        self.init(code: ProblemCode(issue.code).rawValue, message: issue.message, taskKeys: issue.taskKeys.map(\.rawValue))
    }
}
