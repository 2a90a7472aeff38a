/// Hands planning to an executor: the plan is a one-task DAG whose task requires `plannerCapability`
/// (an LLM agent, say). The task's metadata carries the query; its result is a graph (a `Dag`, decoded by
/// the caller) that `adoptDelegatedPlan` validates and merges as the workflow's next DAG version.
public struct DelegatedPlanner: Planner {
    public static let defaultName = "delegated"
    public let name: String
    public let plannerCapability: String
    public let taskKey: TaskKey
    public let estimatedCost: Double

    public init(
        name: String = DelegatedPlanner.defaultName, plannerCapability: String = "planner", taskKey: TaskKey = "plan",
        estimatedCost: Double = 1
    ) {
        self.name = name
        self.plannerCapability = plannerCapability
        self.taskKey = taskKey
        self.estimatedCost = estimatedCost
    }

    public func plan(_ query: Query, context: PlanningContext) throws(PlanningError) -> PlanResult {
        let started = context.now()
        guard !query.text.isEmpty || query.goal != nil else {
            throw PlanningError(.invalidQuery, "planner `\(name)` needs query text or a goal to hand to the planning agent")
        }
        var metadata: [String: String] = ["query.text": query.text]
        if let goal = query.goal { metadata["query.goal"] = goal.artifacts.joined(separator: ",") }
        for (input, value) in query.providedInputs { metadata["input.\(input)"] = value }
        try checkFits(metadata: metadata, labels: query.labels, limit: context.limits.maxMetadataBytesPerTask)
        let task = TaskSpec(
            key: taskKey, name: "plan the query", requiredCapabilities: [plannerCapability], inputs: ["query"],
            outputs: ["plan"], complexity: .medium, estimatedCost: estimatedCost, priority: query.priority,
            labels: query.labels, metadata: metadata,
            rationale: "planning is delegated to an executor advertising `\(plannerCapability)`; the graph it returns is validated and adopted as the next DAG version")
        return try context.finish(
            Dag(tasks: [task]), planner: name,
            rationale: "delegated: one planning task for an executor with capability `\(plannerCapability)`",
            query: query, started: started, uncounted: [taskKey])
    }

    /// The planning task carries the query's text, goal, inputs and labels as its metadata, under
    /// the one limit every task's labels and metadata share (names included). Found by black-box
    /// testing: a text each field's own limit allowed was refused as "task `plan` carries 65546
    /// bytes of labels and metadata", naming a task and labels the caller never sent.
    private func checkFits(metadata: [String: String], labels: [String: String], limit: Int) throws(PlanningError) {
        let size = { (fields: [String: String]) in fields.reduce(0) { $0 + $1.key.utf8.count + $1.value.utf8.count } }
        let total = size(metadata) + size(labels)
        guard total > limit else { return }
        var parts = ["text \(metadata["query.text"]?.utf8.count ?? 0)"]
        if let goal = metadata["query.goal"] { parts.append("goal \(goal.utf8.count)") }
        let inputs = metadata.filter { $0.key.hasPrefix("input.") }
        if !inputs.isEmpty { parts.append("inputs \(inputs.values.reduce(0) { $0 + $1.utf8.count })") }
        if !labels.isEmpty { parts.append("labels \(size(labels))") }
        throw PlanningError(
            .invalidQuery,
            "planner `\(name)` hands the query's text, goal, inputs and labels to its planning task `\(taskKey)`, "
                + "where with their names they may take at most \(limit) bytes; this query needs \(total) "
                + "(\(parts.joined(separator: ", "))). Shorten them, or submit an explicit graph")
    }
}
