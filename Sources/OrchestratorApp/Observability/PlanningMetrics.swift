public import OrchestratorMetrics
public import OrchestratorDomain

/// Planning time by planner and DAG size, DAG sizes by planner, and planning failures.
public struct PlanningMetrics: Sendable {
    let duration: HistogramFamily
    let dagTasks: HistogramFamily
    let failures: Counter

    public init(registry: MetricsRegistry) {
        duration = registry.histogram(
            "orchestrator_planning_duration_seconds",
            help: "Time to plan and validate a query, by planner and DAG size class (tasks: 1-10, 11-100, 101-1000, 1001-10000, 10001+).",
            labels: ["planner", "dag_size"], buckets: Histogram.exponentialBounds(start: 0.0001, factor: 4, count: 10))
        dagTasks = registry.histogram(
            "orchestrator_planned_dag_tasks", help: "Tasks in each planned DAG, by planner.", labels: ["planner"],
            buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000, 10_000, 50_000, 100_000])
        failures = registry.counter(
            "orchestrator_planning_failures_total", help: "Queries that could not be planned or whose plan failed validation.").labels()
    }

    public static let disabled = PlanningMetrics(registry: MetricsRegistry())

    /// Records one successful plan and hands it back (wraps the planner call).
    public func recorded(_ result: PlanResult) -> PlanResult {
        let planner = result.metadata.planner
        let tasks = result.dag.tasks.count
        duration.labels(planner, Self.sizeClass(tasks)).observe(result.metadata.duration)
        dagTasks.labels(planner).observe(Double(tasks))
        return result
    }

    /// Records a query that could not be planned.
    public func recordFailure() {
        failures.increment()
    }

    /// Bounded label values for DAG sizes.
    static func sizeClass(_ tasks: Int) -> String {
        switch tasks {
        case ...10: "1-10"
        case ...100: "11-100"
        case ...1000: "101-1000"
        case ...10_000: "1001-10000"
        default: "10001+"
        }
    }
}

