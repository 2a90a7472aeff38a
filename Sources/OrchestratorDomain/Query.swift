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
    /// Capabilities the plan must not use: executor capabilities as the query names them
    /// (`Constraints.forbidden_capabilities`); the catalog planner is handed catalog entry names.
    public var excludedCapabilities: Set<String>
    /// When not empty, the only executor capabilities the plan's tasks may require
    /// (`Constraints.allowed_capabilities`).
    public var allowedCapabilities: Set<String>

    public init(
        maxTotalCost: Double? = nil, maxTasks: Int? = nil, excludedCapabilities: Set<String> = [], allowedCapabilities: Set<String> = []
    ) {
        self.maxTotalCost = maxTotalCost
        self.maxTasks = maxTasks
        self.excludedCapabilities = excludedCapabilities
        self.allowedCapabilities = allowedCapabilities
    }

    private enum CodingKeys: String, CodingKey { case maxTotalCost, maxTasks, excludedCapabilities, allowedCapabilities }

    /// Queries stored before `allowedCapabilities` existed have none.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        maxTotalCost = try container.decodeIfPresent(Double.self, forKey: .maxTotalCost)
        maxTasks = try container.decodeIfPresent(Int.self, forKey: .maxTasks)
        excludedCapabilities = try container.decodeIfPresent(Set<String>.self, forKey: .excludedCapabilities) ?? []
        allowedCapabilities = try container.decodeIfPresent(Set<String>.self, forKey: .allowedCapabilities) ?? []
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encodeIfPresent(maxTotalCost, forKey: .maxTotalCost)
        try container.encodeIfPresent(maxTasks, forKey: .maxTasks)
        try container.encode(excludedCapabilities.sorted(), forKey: .excludedCapabilities)
        if !allowedCapabilities.isEmpty { try container.encode(allowedCapabilities.sorted(), forKey: .allowedCapabilities) }
    }

    /// One sentence per task requiring a capability the constraints rule out, in plan order.
    public func capabilityViolations(in dag: Dag) -> [String] {
        dag.tasks.compactMap { task in
            let bad = task.requiredCapabilities.filter {
                excludedCapabilities.contains($0) || (!allowedCapabilities.isEmpty && !allowedCapabilities.contains($0))
            }
            guard !bad.isEmpty else { return nil }
            return "task `\(task.key)` requires \(bad.map { "`\($0)`" }.joined(separator: ", ")), which the query's constraints rule out"
        }
    }

    /// Every way `dag` breaks these constraints — its task count, its total estimated cost, the
    /// capabilities its tasks require — for a graph made outside the planners (a delegated
    /// planner's answer, an update), which `PlanningContext.finish` never saw.
    ///
    /// `uncounted` tasks (a delegated planner's planning task) count toward neither `maxTasks` nor
    /// `maxTotalCost`: the bounds are on the plan, not on the planning. Adoption checked a
    /// delegated planner's answer without its planning task and every later update with it, so a
    /// plan adopted at `max_tasks` refused every update after (found by black-box testing).
    public func violations(of dag: Dag, uncounted: Set<TaskKey> = []) -> [String] {
        countViolations(of: dag, uncounted: uncounted) + capabilityViolations(in: dag)
    }

    /// The task count and total cost against `maxTasks` and `maxTotalCost`, one sentence each.
    /// Costs are sums of decimals: a sum within a billionth of the cap is within it (0.1 + 0.2
    /// was refused under a cap of 0.3, as 0.30000000000000004).
    public func countViolations(of dag: Dag, uncounted: Set<TaskKey> = []) -> [String] {
        let counted = uncounted.isEmpty ? dag.tasks : dag.tasks.filter { !uncounted.contains($0.key) }
        var sentences: [String] = []
        if let maxTasks, counted.count > maxTasks {
            sentences.append("the plan needs \(counted.count) tasks; the query allows at most \(maxTasks)")
        }
        let totalCost = counted.reduce(0) { $0 + $1.estimatedCost }
        if let maxTotalCost, totalCost > maxTotalCost + Swift.max(abs(maxTotalCost), 1) * 1e-9 {
            // Said to the billionth, as compared: "costs 0.3", not "0.30000000000000004".
            let said = abs(totalCost) < 1e15 ? (totalCost * 1e9).rounded() / 1e9 : totalCost
            sentences.append("the plan costs \(DotExport.format(said)); the query allows at most \(DotExport.format(maxTotalCost))")
        }
        return sentences
    }
}

extension Query {
    /// `task` with what every task of this query's workflow inherits: the query's priority when
    /// it sets none (0), and each of the query's labels it does not set itself. Planned tasks get
    /// it when they are planned; tasks added later (UpdateDag, a delegated planner's graph) too.
    public func inherited(by task: TaskSpec) -> TaskSpec {
        var task = task
        if task.priority == 0 { task.priority = priority }
        for (label, value) in labels where task.labels[label] == nil { task.labels[label] = value }
        return task
    }
}
