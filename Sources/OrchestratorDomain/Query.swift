/// What a user, a service or another agent asks the orchestrator to do.
///
/// A query either carries its graph (`explicitGraph`), or says what it wants: free `text` mapped to goal
/// artifacts by the catalog's intent rules, and/or a structured `goal`. The planner registry picks the
/// planner from what is present (see `PlannerRegistry.select(for:)`).
public struct Query: Hashable, Sendable, Codable {
    public var text: String
    public var goal: Goal?
    /// Artifacts the caller already has, by name, with their values (`"urls": "https://…"`).
    public var providedInputs: [String: String]
    public var explicitGraph: Dag?
    /// Default priority of the workflow's tasks (a task's own non-zero priority wins).
    public var priority: Int
    /// Labels copied onto every planned task that does not set the same label itself.
    public var labels: [String: String]
    public var constraints: PlanningConstraints
    /// Asks for a particular planner by name (`explicit`, `catalog`, `delegated`).
    public var plannerHint: String?

    public init(
        text: String = "", goal: Goal? = nil, providedInputs: [String: String] = [:], explicitGraph: Dag? = nil,
        priority: Int = 0, labels: [String: String] = [:], constraints: PlanningConstraints = .init(),
        plannerHint: String? = nil
    ) {
        self.text = text
        self.goal = goal
        self.providedInputs = providedInputs
        self.explicitGraph = explicitGraph
        self.priority = priority
        self.labels = labels
        self.constraints = constraints
        self.plannerHint = plannerHint
    }
}

/// A structured goal: the artifacts the workflow must produce.
public struct Goal: Hashable, Sendable, Codable {
    public var artifacts: [String]

    public init(artifacts: [String]) { self.artifacts = artifacts }
}

/// Limits a plan must respect, whatever the planner.
public struct PlanningConstraints: Hashable, Sendable, Codable {
    /// The plan's total estimated cost may not exceed this.
    public var maxTotalCost: Double?
    /// The plan may not have more tasks than this.
    public var maxTasks: Int?
    /// Catalog capabilities the planner must not use (by capability name).
    public var excludedCapabilities: Set<String>

    public init(maxTotalCost: Double? = nil, maxTasks: Int? = nil, excludedCapabilities: Set<String> = []) {
        self.maxTotalCost = maxTotalCost
        self.maxTasks = maxTasks
        self.excludedCapabilities = excludedCapabilities
    }
}
