/// The coarse size of a task, used to pick executors and default timeouts.
public enum Complexity: String, Hashable, Sendable, Codable, CaseIterable {
    case trivial, low, medium, high
}

/// Everything the orchestrator knows about a task before it runs: what it is, what it needs, what it
/// costs and how it may be retried. Dependencies are not here; they are the DAG's edges.
public struct TaskSpec: Hashable, Sendable, Codable {
    public var key: TaskKey
    /// Human-readable name; defaults to the key.
    public var name: String
    /// Free-form description shown in UIs and to executors (`TaskSpec.description` in the API).
    public var description: String
    /// Capabilities an executor must advertise to receive this task (all of them).
    public var requiredCapabilities: [String]
    /// Named artifacts this task consumes and produces (informational for explicit graphs, the planning
    /// currency of the catalog planner).
    public var inputs: [String]
    public var outputs: [String]
    public var complexity: Complexity
    /// Estimated cost in arbitrary units (seconds of work, tokens, money): the weight of the critical path
    /// and of the remaining-path rank. Must be finite and not negative.
    public var estimatedCost: Double
    /// Larger runs first; dispatch orders by priority, then remaining-path rank, then age.
    public var priority: Int
    public var resources: ResourceNeeds
    /// Wall-clock limit of one attempt, in seconds (nil: the server default).
    public var timeoutSeconds: Int?
    /// How long an executor may stay silent before its lease is considered lost, in seconds.
    public var heartbeatTimeoutSeconds: Int?
    public var retry: RetryPolicy
    /// Random spread applied to each retry delay, as a fraction in [0, 1] (0.2 = ±20 %; 0 = none). Kept
    /// beside `retry` rather than in `RetryPolicy` so that adding it changed no other type.
    public var retryJitter: Double
    public var labels: [String: String]
    /// Free-form parameters handed to the executor.
    public var metadata: [String: String]
    /// Why the planner put this task in the plan (empty for hand-written graphs).
    public var rationale: String

    public init(
        key: TaskKey, name: String? = nil, requiredCapabilities: [String] = [], inputs: [String] = [],
        outputs: [String] = [], complexity: Complexity = .medium, estimatedCost: Double = 1,
        priority: Int = 0, resources: ResourceNeeds = .none, timeoutSeconds: Int? = nil,
        heartbeatTimeoutSeconds: Int? = nil, retry: RetryPolicy = .default, labels: [String: String] = [:],
        metadata: [String: String] = [:], rationale: String = "", description: String = "", retryJitter: Double = 0
    ) {
        self.key = key
        self.name = name ?? key.rawValue
        self.description = description
        self.requiredCapabilities = requiredCapabilities
        self.inputs = inputs
        self.outputs = outputs
        self.complexity = complexity
        self.estimatedCost = estimatedCost
        self.priority = priority
        self.resources = resources
        self.timeoutSeconds = timeoutSeconds
        self.heartbeatTimeoutSeconds = heartbeatTimeoutSeconds
        self.retry = retry
        self.retryJitter = retryJitter
        self.labels = labels
        self.metadata = metadata
        self.rationale = rationale
    }
}

extension TaskSpec {
    /// The longest lease TTL a task may ask for (24 days). A lease's TTL is stored in
    /// milliseconds in a 32-bit column (`tasks.lease_ttl_ms`): a longer one failed every claim
    /// that met the task with "integer out of range", which left every executor offering its
    /// capabilities without work (found by black-box testing). The API refuses longer ones.
    public static let maxLeaseTTLMillis: Int64 = 24 * 86_400_000

    /// The task's own lease TTL in milliseconds (`heartbeatTimeoutSeconds`), at most
    /// `maxLeaseTTLMillis` (a task stored before that bound keeps working); nil for the server's.
    public var leaseTTLMillis: Int64? {
        heartbeatTimeoutSeconds.map { min(Int64($0) * 1000, Self.maxLeaseTTLMillis) }
    }
}
