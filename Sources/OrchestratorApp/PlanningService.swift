import OrchestratorDomain
import OrchestratorTracing

/// Plans queries with the configured planners and validation limits, translating domain
/// failures into `AppError.invalidArgument` with every problem listed.
public struct PlanningService: Sendable {
    public let registry: PlannerRegistry
    public let limits: ValidationLimits
    /// Shared with the gRPC edge's planning handler, which plans through the registry itself.
    public let metrics: PlanningMetrics

    public init(registry: PlannerRegistry, limits: ValidationLimits = .default, metrics: PlanningMetrics = .disabled) {
        self.registry = registry
        self.limits = limits
        self.metrics = metrics
    }

    /// Plans and validates `query` without storing anything.
    public func plan(_ query: Query) throws(AppError) -> PlanResult {
        let span = TracingSystem.tracer.startSpan("plan")
        defer { span.end() }
        do {
            let result = try metrics.recorded(registry.plan(query, context: PlanningContext(limits: limits)))
            span.setAttribute("orchestrator.planner", .string(result.metadata.planner))
            span.setAttribute("orchestrator.task_count", .int(result.dag.tasks.count))
            return result
        } catch {
            span.setStatus(.error(error.description))
            metrics.recordFailure()
            throw AppError.invalidArgument(error.description, issues: error.issues)
        }
    }
}
