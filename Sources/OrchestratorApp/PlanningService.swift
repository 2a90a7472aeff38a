import OrchestratorDomain

/// Plans queries with the configured planners and validation limits, translating domain
/// failures into `AppError.invalidArgument` with every problem listed.
public struct PlanningService: Sendable {
    public let registry: PlannerRegistry
    public let limits: ValidationLimits

    public init(registry: PlannerRegistry, limits: ValidationLimits = .default) {
        self.registry = registry
        self.limits = limits
    }

    /// Plans and validates `query` without storing anything.
    public func plan(_ query: Query) throws(AppError) -> PlanResult {
        do {
            return try registry.plan(query, context: PlanningContext(limits: limits))
        } catch {
            throw AppError.invalidArgument(error.description, issues: error.issues)
        }
    }
}
