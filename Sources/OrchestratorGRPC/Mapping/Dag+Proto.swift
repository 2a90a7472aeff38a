public import OrchestratorAPI
public import OrchestratorApp
public import OrchestratorDomain

/// A DAG decoded from the API: the domain graph and the executor payloads kept beside it.
public struct DecodedDag: Sendable, Hashable {
    public var dag: Dag
    /// Payload per task key, for tasks that carried one (the store keeps payloads beside the DAG).
    public var payloads: [TaskKey: [UInt8]]

    public init(dag: Dag, payloads: [TaskKey: [UInt8]]) {
        self.dag = dag
        self.payloads = payloads
    }
}

extension DecodedDag {
    /// Decodes an API graph: each task's `depends_on` becomes edges (upstream → task, in order).
    ///
    /// References are checked here, where the API's shape is still known, so a problem reads as
    /// "task `x` depends on unknown task `y`" rather than in terms of edges the caller never wrote;
    /// such references are left out of the graph so that the domain validator, run afterwards, does not
    /// report them a second time. Duplicate keys, cycles, key syntax and limits are the validator's job.
    ///
    /// - Parameter upstreamOutside: `depends_on` may name tasks outside this graph (a delegated
    ///   plan's tasks may depend on the workflow's existing tasks, `plan` among them): such edges are
    ///   kept, and the merge's validation judges them.
    public init(proto: Orchestrator_V1_Dag, upstreamOutside: Bool = false, problems: inout ProblemList) {
        var keys = Set<String>()
        for task in proto.tasks { keys.insert(task.key) }
        var tasks: [TaskSpec] = []
        var edges: [Edge] = []
        var payloads: [TaskKey: [UInt8]] = [:]
        tasks.reserveCapacity(proto.tasks.count)
        for task in proto.tasks {
            tasks.append(TaskSpec(proto: task, problems: &problems))
            if !task.payload.isEmpty { payloads[TaskKey(task.key)] = task.payload }
            for upstream in task.dependsOn {
                if upstream == task.key {
                    problems.add(.selfLoop, "task `\(task.key)` depends on itself", keys: [task.key])
                } else if !keys.contains(upstream) && !upstreamOutside {
                    problems.add(
                        .unknownDependency, "task `\(task.key)` depends on unknown task `\(upstream)`",
                        keys: [task.key, upstream])
                } else {
                    edges.append(Edge(from: TaskKey(upstream), to: TaskKey(task.key)))
                }
            }
        }
        self.init(dag: Dag(tasks: tasks, edges: edges), payloads: payloads)
    }
}

extension Orchestrator_V1_Dag {
    /// The API form of a graph: edges become each task's `depends_on`, in edge order.
    ///
    /// - Parameter payloads: explicit payloads by key; tasks without one get `ExecutorPayload.derived`.
    public init(_ dag: Dag, payloads: [TaskKey: [UInt8]] = [:]) {
        self.init()
        var upstream: [TaskKey: [TaskKey]] = [:]
        for edge in dag.edges { upstream[edge.to, default: []].append(edge.from) }
        tasks = dag.tasks.map { spec in
            Orchestrator_V1_TaskSpec(spec, dependsOn: upstream[spec.key] ?? [], payload: payloads[spec.key])
        }
    }

    /// A stored version with its number, reason, author and time.
    public init(_ stored: StoredDagVersion, payloads: [TaskKey: [UInt8]] = [:]) {
        self.init(stored.dag, payloads: payloads)
        version = Int32(clamping: stored.version)
        reason = stored.reason
        author = stored.author
        createdUnixMs = stored.createdAt
    }
}

extension Orchestrator_V1_DagVersionInfo {
    public init(_ stored: DagVersionSummary) {
        self.init(
            version: Int32(clamping: stored.version), reason: stored.reason, author: stored.author,
            createdUnixMs: stored.createdAt, taskCount: Int32(clamping: stored.taskCount))
    }
}

extension Orchestrator_V1_Edge {
    public init(_ edge: Edge) { self.init(upstream: edge.from.rawValue, downstream: edge.to.rawValue) }

    public var domainEdge: Edge { Edge(from: TaskKey(upstream), to: TaskKey(downstream)) }
}
