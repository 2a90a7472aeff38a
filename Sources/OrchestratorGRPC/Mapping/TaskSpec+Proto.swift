public import OrchestratorAPI
public import OrchestratorDomain
import OrchestratorApp

/// Server defaults the API documents for zero-valued fields (dag.proto).
public enum APIDefaults {
    public static let maxAttempts = 3
    public static let initialBackoffMillis = 1_000
    public static let maxBackoffMillis = 60_000
    public static let backoffMultiplier = 2.0
    public static let leaseTTLMillis: Int64 = 30_000
    /// Longest `timeouts` value accepted (366 days): larger ones overflowed the rounding to seconds
    /// (a crash, found by fuzzing) and would leave PostgreSQL's interval range in dispatch's deadlines.
    public static let maxTimeoutMillis: Int64 = 366 * 86_400_000
    /// Latest instant a `*_unix_ms` filter may name (9999-12-31T23:59:59.999Z, protobuf Timestamp's
    /// last): later ones trapped in the timestamp encoding and crashed the server.
    public static let latestUnixMillis: Int64 = 253_402_300_799_999

    /// Checks a `*_unix_ms` filter field (0 = unset).
    static func checkInstant(_ value: Int64, field: String) throws {
        guard (0...latestUnixMillis).contains(value) else {
            throw AppError.invalidArgument("\(field) must lie in [0, \(latestUnixMillis)] (up to 9999-12-31), got \(value)")
        }
    }
}

extension TaskSpec {
    /// Decodes an API task spec, adding every field problem to `problems` and returning the best value
    /// it can (so that graph-level validation can still run and report its own problems).
    ///
    /// Zero values take the defaults the API documents: name → key, estimated cost → 1, retry fields →
    /// 3 attempts / 1000 ms / 60000 ms / ×2.0. Durations are rounded up to the domain's whole seconds,
    /// so a limit is never shorter than asked. `depends_on` and `payload` are not part of the domain
    /// spec: the DAG decoder turns the former into edges and keeps the latter beside the DAG.
    public init(proto: Orchestrator_V1_TaskSpec, problems: inout ProblemList) {
        let key = TaskKey(proto.key)
        let label = proto.key.isEmpty ? "a task with an empty key" : "task `\(proto.key)`"
        func invalid(_ field: String, _ value: String, _ rule: String) {
            problems.add(.invalidField, "\(label): \(field) is \(value); \(rule)", keys: proto.key.isEmpty ? [] : [proto.key])
        }

        var retry = RetryPolicy.default
        var jitter = 0.0
        if let r = proto.retry {
            if r.maxAttempts < 0 { invalid("retry.max_attempts", "\(r.maxAttempts)", "it must be ≥ 1, or 0 for the default (3)") }
            if r.maxAttempts > 0 { retry.maxAttempts = Int(r.maxAttempts) }
            // Bounded like `timeouts`: a backoff of 10^16 ms passed validation and then crashed
            // the server (and every restart after it) computing the retry's not-before time.
            let backoffBound = "it must lie in [0, \(RetryPolicy.longestBackoffMillis)] (at most 366 days)"
            if !(0...Int64(RetryPolicy.longestBackoffMillis)).contains(r.initialBackoffMs) {
                invalid("retry.initial_backoff_ms", "\(r.initialBackoffMs)", backoffBound)
            } else if r.initialBackoffMs > 0 {
                retry.initialBackoffMillis = Int(r.initialBackoffMs)
            }
            if !(0...Int64(RetryPolicy.longestBackoffMillis)).contains(r.maxBackoffMs) {
                invalid("retry.max_backoff_ms", "\(r.maxBackoffMs)", backoffBound)
            } else if r.maxBackoffMs > 0 {
                retry.maxBackoffMillis = Int(r.maxBackoffMs)
            }
            // Both given and out of order: the cap would silently win (every retry after `max`),
            // so the policy is refused rather than half ignored. One given alone moves the other's
            // default to meet it (`max_backoff_ms = 500` alone: the first retry after 500 ms;
            // `initial_backoff_ms = 120000` alone: at most 120 s), so that the stored policy,
            // read back with both fields set, is valid too (found by fuzzing: GetDag's graph was
            // refused when submitted again).
            if r.initialBackoffMs > 0, r.maxBackoffMs > 0, r.initialBackoffMs > r.maxBackoffMs,
                r.maxBackoffMs <= Int64(RetryPolicy.longestBackoffMillis)
            {
                invalid("retry.initial_backoff_ms", "\(r.initialBackoffMs)", "it must not exceed retry.max_backoff_ms (\(r.maxBackoffMs))")
            } else if r.maxBackoffMs == 0 {
                retry.maxBackoffMillis = max(retry.maxBackoffMillis, retry.initialBackoffMillis)
            } else if r.initialBackoffMs == 0 {
                retry.initialBackoffMillis = min(retry.initialBackoffMillis, retry.maxBackoffMillis)
            }
            if r.backoffMultiplier != 0 {
                if !r.backoffMultiplier.isFinite || r.backoffMultiplier < 1 {
                    invalid(
                        "retry.backoff_multiplier", "\(r.backoffMultiplier)", "it must be a finite number ≥ 1, or 0 for the default (2.0)")
                } else {
                    retry.backoffMultiplier = r.backoffMultiplier
                }
            }
            if !(r.jitter >= 0 && r.jitter <= 1) {
                invalid("retry.jitter", "\(r.jitter)", "it must lie in [0, 1]")
            } else {
                jitter = r.jitter
            }
        }

        var timeoutSeconds: Int?
        var heartbeatSeconds: Int?
        if let t = proto.timeouts {
            let bound = "it must lie in [0, \(APIDefaults.maxTimeoutMillis)] (at most 366 days)"
            if !(0...APIDefaults.maxTimeoutMillis).contains(t.startToCloseMs) {
                invalid("timeouts.start_to_close_ms", "\(t.startToCloseMs)", bound)
            } else if t.startToCloseMs > 0 {
                timeoutSeconds = Self.wholeSeconds(t.startToCloseMs)
            }
            if !(0...TaskSpec.maxLeaseTTLMillis).contains(t.leaseTtlMs) {
                invalid("timeouts.lease_ttl_ms", "\(t.leaseTtlMs)", "it must lie in [0, \(TaskSpec.maxLeaseTTLMillis)] (at most 24 days)")
            } else if t.leaseTtlMs > 0 {
                heartbeatSeconds = Self.wholeSeconds(t.leaseTtlMs)
            }
        }

        var resources = ResourceNeeds.none
        if let r = proto.resources {
            if !r.cpuCores.isFinite || r.cpuCores < 0 || r.cpuCores > 1e9 {
                invalid("resources.cpu_cores", "\(r.cpuCores)", "it must be a finite number ≥ 0")
            } else {
                resources.cpuMillis = Int((r.cpuCores * 1000).rounded())
            }
            if r.memoryMb < 0 {
                invalid("resources.memory_mb", "\(r.memoryMb)", "it must be ≥ 0")
            } else {
                resources.memoryMiB = Int(r.memoryMb)
            }
            if r.gpus < 0 { invalid("resources.gpus", "\(r.gpus)", "it must be ≥ 0") } else { resources.gpus = Int(r.gpus) }
            for name in r.custom.keys.sorted() {
                let amount = r.custom[name]!
                // The domain counts custom resources in whole units (licences, tokens); a fraction would be
                // silently rounded, so it is refused instead.
                if !amount.isFinite || amount < 0 || amount != amount.rounded() || amount > 1e15 {
                    invalid("resources.custom[\"\(name)\"]", "\(amount)", "custom resources are whole numbers ≥ 0")
                } else {
                    resources.custom[name] = Int(amount)
                }
            }
        }

        self.init(
            key: key, name: proto.name.isEmpty ? nil : proto.name, requiredCapabilities: proto.requiredCapabilities,
            inputs: proto.inputs, outputs: proto.outputs,
            estimatedCost: proto.estimatedCost == 0 ? 1 : proto.estimatedCost, priority: Int(proto.priority),
            resources: resources, timeoutSeconds: timeoutSeconds, heartbeatTimeoutSeconds: heartbeatSeconds, retry: retry,
            labels: proto.labels, rationale: proto.rationale, description: proto.description, retryJitter: jitter)
    }

    /// Milliseconds rounded up to whole seconds.
    static func wholeSeconds(_ millis: Int64) -> Int { Int((millis + 999) / 1000) }
}

extension Orchestrator_V1_TaskSpec {
    /// The API form of a domain task spec.
    ///
    /// - Parameters:
    ///   - dependsOn: the task's upstream keys (edges belong to the DAG, not to the spec).
    ///   - payload: the executor input stored beside the DAG; nil derives it from the spec's metadata
    ///     (see `ExecutorPayload`).
    public init(_ spec: TaskSpec, dependsOn: [TaskKey] = [], payload: [UInt8]? = nil) {
        self.init()
        key = spec.key.rawValue
        name = spec.name
        // Catalog plans keep a capability's description in the task's metadata.
        description = spec.description.isEmpty ? (spec.metadata["description"] ?? "") : spec.description
        self.dependsOn = dependsOn.map(\.rawValue)
        requiredCapabilities = spec.requiredCapabilities
        inputs = spec.inputs
        outputs = spec.outputs
        estimatedCost = spec.estimatedCost
        priority = Int32(clamping: spec.priority)
        if spec.resources != .none {
            resources = Orchestrator_V1_Resources(
                cpuCores: Double(spec.resources.cpuMillis) / 1000, memoryMb: Int64(spec.resources.memoryMiB),
                gpus: Int32(clamping: spec.resources.gpus), custom: spec.resources.custom.mapValues(Double.init))
        }
        retry = Orchestrator_V1_RetryPolicy(
            maxAttempts: Int32(clamping: spec.retry.maxAttempts), initialBackoffMs: Int64(spec.retry.initialBackoffMillis),
            maxBackoffMs: Int64(spec.retry.maxBackoffMillis), backoffMultiplier: spec.retry.backoffMultiplier,
            jitter: spec.retryJitter)
        if spec.timeoutSeconds != nil || spec.heartbeatTimeoutSeconds != nil {
            timeouts = Orchestrator_V1_Timeouts(
                startToCloseMs: Int64(spec.timeoutSeconds ?? 0) * 1000, leaseTtlMs: Int64(spec.heartbeatTimeoutSeconds ?? 0) * 1000)
        }
        labels = spec.labels
        self.payload = payload ?? ExecutorPayload.derived(from: spec)
        rationale = spec.rationale
    }
}
