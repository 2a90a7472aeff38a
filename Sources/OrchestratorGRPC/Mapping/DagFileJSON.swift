import Foundation
public import OrchestratorAPI

/// The DAG file format `orchctl` reads (`orchctl submit --dag`, `orchctl dag`): JSON with the field
/// names of `orchestrator.v1.TaskSpec`, e.g.
/// `{"tasks": [{"key": "fetch", "required_capabilities": ["web.fetch"]},
///             {"key": "summarise", "depends_on": ["fetch"], "payload": "{\"words\": 100}"}]}`.
///
/// It lives here rather than in orchctl so that the fuzz target (Sources/FuzzTargets) decodes
/// files exactly as the command does.
public enum DagFileJSON {
    /// The file is not a DAG file; `message` names where (`source: tasks[3]: …`).
    public struct Failure: Error, CustomStringConvertible {
        public let message: String
        public var description: String { message }
    }

    /// Decodes a DAG file's bytes; `source` (the path) prefixes every message.
    public static func decode(_ bytes: [UInt8], source: String) throws(Failure) -> Orchestrator_V1_Dag {
        guard let root = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any],
            let tasks = root["tasks"] as? [[String: Any]]
        else {
            throw Failure(message: "\(source): expected a JSON object with a \"tasks\" array")
        }
        var dag = Orchestrator_V1_Dag()
        for (index, object) in tasks.enumerated() {
            dag.tasks.append(try task(object, at: "\(source): tasks[\(index)]"))
        }
        return dag
    }

    static func task(_ object: [String: Any], at location: String) throws(Failure) -> Orchestrator_V1_TaskSpec {
        var spec = Orchestrator_V1_TaskSpec()
        guard let key = object["key"] as? String else { throw Failure(message: "\(location): \"key\" (a string) is required") }
        spec.key = key
        spec.name = object["name"] as? String ?? ""
        spec.description = object["description"] as? String ?? ""
        spec.dependsOn = try strings(object["depends_on"], "depends_on", location)
        spec.requiredCapabilities = try strings(object["required_capabilities"], "required_capabilities", location)
        spec.inputs = try strings(object["inputs"], "inputs", location)
        spec.outputs = try strings(object["outputs"], "outputs", location)
        spec.estimatedCost = (object["estimated_cost"] as? NSNumber)?.doubleValue ?? 0
        spec.priority = Int32(truncatingIfNeeded: (object["priority"] as? NSNumber)?.intValue ?? 0)
        if let labels = object["labels"] as? [String: String] { spec.labels = labels }
        switch object["payload"] {
        case nil: break
        case let text as String: spec.payload = Array(text.utf8)
        case let value?:
            spec.payload = Array((try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys])) ?? Data())
        }
        if let retry = object["retry"] as? [String: Any] {
            var policy = Orchestrator_V1_RetryPolicy()
            policy.maxAttempts = Int32(truncatingIfNeeded: (retry["max_attempts"] as? NSNumber)?.intValue ?? 0)
            policy.initialBackoffMs = (retry["initial_backoff_ms"] as? NSNumber)?.int64Value ?? 0
            policy.maxBackoffMs = (retry["max_backoff_ms"] as? NSNumber)?.int64Value ?? 0
            policy.backoffMultiplier = (retry["backoff_multiplier"] as? NSNumber)?.doubleValue ?? 0
            policy.jitter = (retry["jitter"] as? NSNumber)?.doubleValue ?? 0
            spec.retry = policy
        }
        if let timeouts = object["timeouts"] as? [String: Any] {
            var limits = Orchestrator_V1_Timeouts()
            limits.startToCloseMs = (timeouts["start_to_close_ms"] as? NSNumber)?.int64Value ?? 0
            limits.leaseTtlMs = (timeouts["lease_ttl_ms"] as? NSNumber)?.int64Value ?? 0
            spec.timeouts = limits
        }
        return spec
    }

    static func strings(_ value: Any?, _ field: String, _ location: String) throws(Failure) -> [String] {
        guard let value else { return [] }
        guard let list = value as? [String] else { throw Failure(message: "\(location): \"\(field)\" must be an array of strings") }
        return list
    }
}
