public import OrchestratorAPI
public import OrchestratorApp
public import OrchestratorDomain

/// A query decoded from the API, with the parts the domain `Query` has no place for.
public struct DecodedQuery: Sendable, Hashable {
    public var query: Query
    /// FAILURE_POLICY_UNSPECIFIED decodes to the server default, fail fast.
    public var failurePolicy: FailurePolicy
    /// `Constraints.allowed_capabilities`: when not empty, only these executor capabilities may appear
    /// in the plan. (Forbidden capabilities are in `query.constraints.excludedCapabilities`.)
    public var allowedCapabilities: [String]
    /// Executor payloads of the explicit graph's tasks, by key.
    public var payloads: [TaskKey: [UInt8]]

    public init(
        query: Query, failurePolicy: FailurePolicy = .failFast, allowedCapabilities: [String] = [],
        payloads: [TaskKey: [UInt8]] = [:]
    ) {
        self.query = query
        self.failurePolicy = failurePolicy
        self.allowedCapabilities = allowedCapabilities
        self.payloads = payloads
    }
}

extension DecodedQuery {
    /// Decodes an API query, collecting every problem in `problems`.
    ///
    /// The graph counts as given when it has tasks, when the query asks for the explicit planner, or
    /// when the query has neither text nor goals (an empty graph is then what the caller sent, and is
    /// reported as EMPTY_GRAPH rather than as a query with nothing to plan). An empty graph beside text
    /// or goals is treated as absent, as proto3 clients often send empty sub-messages.
    public init(proto: Orchestrator_V1_Query, problems: inout ProblemList) {
        var query = Query(
            text: proto.text, goal: proto.goals.isEmpty ? nil : Goal(artifacts: proto.goals),
            providedInputs: proto.inputs, priority: Int(proto.priority), labels: proto.labels)
        var payloads: [TaskKey: [UInt8]] = [:]

        switch proto.planner {
        case .unrecognized(let value):
            problems.add(
                .invalidField, "planner is \(value), which this server does not know; use PLANNER_KIND_EXPLICIT, _CATALOG or _DELEGATED")
        default:
            query.plannerHint = proto.planner.plannerName
        }

        if let graph = proto.graph,
            !graph.tasks.isEmpty || proto.planner == .explicit || (proto.text.isEmpty && proto.goals.isEmpty)
        {
            let decoded = DecodedDag(proto: graph, problems: &problems)
            query.explicitGraph = decoded.dag
            payloads = decoded.payloads
        }

        if proto.goals.contains(where: \.isEmpty) { problems.add(.invalidField, "goals contains an empty artifact name") }
        // As goals: an artifact without a name is nothing a planner can use (it was taken, and
        // the catalog plan's rationale listed "available inputs: ``"; found by black-box testing).
        if proto.inputs.keys.contains("") { problems.add(.invalidField, "inputs has an entry with an empty artifact name") }

        var allowed: [String] = []
        if let c = proto.constraints {
            if !c.maxTotalCost.isFinite || c.maxTotalCost < 0 {
                problems.add(.invalidField, "constraints.max_total_cost is \(c.maxTotalCost); it must be ≥ 0 (0 = unbounded)")
            } else if c.maxTotalCost > 0 {
                query.constraints.maxTotalCost = c.maxTotalCost
            }
            if c.maxTasks < 0 {
                problems.add(.invalidField, "constraints.max_tasks is \(c.maxTasks); it must be ≥ 0 (0 = the server's limit)")
            } else if c.maxTasks > 0 {
                query.constraints.maxTasks = Int(c.maxTasks)
            }
            allowed = c.allowedCapabilities
            query.constraints.excludedCapabilities = Set(c.forbiddenCapabilities)
            query.constraints.allowedCapabilities = Set(c.allowedCapabilities)
            let both = Set(c.allowedCapabilities).intersection(c.forbiddenCapabilities).sorted()
            if !both.isEmpty {
                problems.add(
                    .invalidField, "constraints name \(both.map { "`\($0)`" }.joined(separator: ", ")) as both allowed and forbidden")
            }
        }

        var policy = FailurePolicy.failFast
        switch proto.failurePolicy {
        case .unrecognized(let value):
            problems.add(.invalidField, "failure_policy is \(value), which this server does not know")
        default:
            policy = proto.failurePolicy.domainPolicy ?? .failFast
        }

        self.init(query: query, failurePolicy: policy, allowedCapabilities: allowed, payloads: payloads)
    }
}

extension Orchestrator_V1_Query {
    /// The API form of a stored query. `allowedCapabilities` is not part of the domain query, so it is
    /// passed separately when known.
    public init(
        _ query: Query, failurePolicy: FailurePolicy, allowedCapabilities: [String] = [], payloads: [TaskKey: [UInt8]] = [:]
    ) {
        self.init()
        text = query.text
        goals = query.goal?.artifacts ?? []
        inputs = query.providedInputs
        graph = query.explicitGraph.map { Orchestrator_V1_Dag($0, payloads: payloads) }
        planner = Orchestrator_V1_PlannerKind(plannerName: query.plannerHint)
        priority = Int32(clamping: query.priority)
        labels = query.labels
        let c = query.constraints
        let allowedCapabilities = allowedCapabilities.isEmpty ? c.allowedCapabilities.sorted() : allowedCapabilities
        if c.maxTotalCost != nil || c.maxTasks != nil || !c.excludedCapabilities.isEmpty || !allowedCapabilities.isEmpty {
            constraints = Orchestrator_V1_Constraints(
                maxTotalCost: c.maxTotalCost ?? 0, maxTasks: Int32(clamping: c.maxTasks ?? 0),
                allowedCapabilities: allowedCapabilities, forbiddenCapabilities: c.excludedCapabilities.sorted())
        }
        self.failurePolicy = Orchestrator_V1_FailurePolicy(failurePolicy)
    }

    public init(_ decoded: DecodedQuery) {
        self.init(
            decoded.query, failurePolicy: decoded.failurePolicy, allowedCapabilities: decoded.allowedCapabilities,
            payloads: decoded.payloads)
    }
}
