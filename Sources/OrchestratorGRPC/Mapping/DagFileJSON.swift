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

    /// Decodes a DAG file's bytes; `source` (the path) prefixes every message. Strict: a value of
    /// the wrong type, a number out of its field's range (or not a whole number where one is
    /// needed) and an unknown field are errors, never silently dropped, wrapped or rounded (a
    /// priority of 2^31 used to become -2^31: highest became lowest).
    public static func decode(_ bytes: [UInt8], source: String) throws(Failure) -> Orchestrator_V1_Dag {
        let parsed: Any
        do {
            parsed = try JSONSerialization.jsonObject(with: Data(bytes))
        } catch {
            throw Failure(message: "\(source): not valid JSON: \(JSONSyntaxError.describe(error, in: bytes))")
        }
        if let comma = JSONSyntaxError.trailingComma(in: bytes) {
            throw Failure(message: "\(source): not valid JSON: \(comma)")
        }
        if let duplicate = JSONDuplicateKeys.first(in: bytes) {
            let location = duplicate.path.isEmpty ? source : "\(source): \(duplicate.path)"
            throw Failure(message: "\(location): field \"\(duplicate.key)\" appears twice (keep one; JSON parsers disagree on which wins)")
        }
        guard let root = parsed as? [String: Any], let tasks = root["tasks"] as? [Any] else {
            throw Failure(message: "\(source): expected a JSON object with a \"tasks\" array")
        }
        if let unknown = root.keys.filter({ $0 != "tasks" }).sorted().first {
            throw Failure(message: "\(source): unknown field \"\(unknown)\" (a DAG file has only \"tasks\")")
        }
        var dag = Orchestrator_V1_Dag()
        for (index, element) in tasks.enumerated() {
            let location = "\(source): tasks[\(index)]"
            guard let object = element as? [String: Any] else { throw Failure(message: "\(location): expected a JSON object") }
            dag.tasks.append(try task(Fields(object, location)))
        }
        return dag
    }

    static let taskFields: Set<String> = [
        "key", "name", "description", "depends_on", "required_capabilities", "inputs", "outputs", "estimated_cost", "priority",
        "labels", "payload", "retry", "timeouts",
    ]
    static let retryFields: Set<String> = ["max_attempts", "initial_backoff_ms", "max_backoff_ms", "backoff_multiplier", "jitter"]
    static let timeoutFields: Set<String> = ["start_to_close_ms", "lease_ttl_ms"]

    static func task(_ fields: Fields) throws(Failure) -> Orchestrator_V1_TaskSpec {
        try fields.onlyKnown(taskFields)
        var spec = Orchestrator_V1_TaskSpec()
        guard let key = try fields.string("key") else { throw fields.failure("\"key\" (a string) is required") }
        spec.key = key
        spec.name = try fields.string("name") ?? ""
        spec.description = try fields.string("description") ?? ""
        spec.dependsOn = try fields.strings("depends_on")
        spec.requiredCapabilities = try fields.strings("required_capabilities")
        spec.inputs = try fields.strings("inputs")
        spec.outputs = try fields.strings("outputs")
        spec.estimatedCost = try fields.double("estimated_cost") ?? 0
        spec.priority = Int32(try fields.integer("priority", in: Int64(Int32.min)...Int64(Int32.max)) ?? 0)
        spec.labels = try fields.stringMap("labels")
        switch fields.object["payload"] {
        case nil, is NSNull: break
        case let text as String: spec.payload = Array(text.utf8)
        case let value?:
            spec.payload = Array((try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .fragmentsAllowed])) ?? Data())
        }
        if let retry = try fields.nested("retry") {
            try retry.onlyKnown(retryFields)
            var policy = Orchestrator_V1_RetryPolicy()
            policy.maxAttempts = Int32(try retry.integer("max_attempts", in: Int64(Int32.min)...Int64(Int32.max)) ?? 0)
            policy.initialBackoffMs = try retry.integer("initial_backoff_ms") ?? 0
            policy.maxBackoffMs = try retry.integer("max_backoff_ms") ?? 0
            policy.backoffMultiplier = try retry.double("backoff_multiplier") ?? 0
            policy.jitter = try retry.double("jitter") ?? 0
            spec.retry = policy
        }
        if let timeouts = try fields.nested("timeouts") {
            try timeouts.onlyKnown(timeoutFields)
            var limits = Orchestrator_V1_Timeouts()
            limits.startToCloseMs = try timeouts.integer("start_to_close_ms") ?? 0
            limits.leaseTtlMs = try timeouts.integer("lease_ttl_ms") ?? 0
            spec.timeouts = limits
        }
        return spec
    }

    /// One JSON object of the file and where it is, with typed accessors that refuse wrong types.
    struct Fields {
        let object: [String: Any]
        let location: String

        init(_ object: [String: Any], _ location: String) {
            self.object = object
            self.location = location
        }

        func failure(_ message: String) -> Failure { Failure(message: "\(location): \(message)") }

        func onlyKnown(_ known: Set<String>) throws(Failure) {
            if let unknown = object.keys.filter({ !known.contains($0) }).sorted().first {
                throw failure("unknown field \"\(unknown)\" (known: \(known.sorted().joined(separator: ", ")))")
            }
        }

        func string(_ field: String) throws(Failure) -> String? {
            guard let value = object[field], !(value is NSNull) else { return nil }
            guard let text = value as? String else { throw failure("\"\(field)\" must be a string") }
            try noNUL(text, field)
            return text
        }

        func strings(_ field: String) throws(Failure) -> [String] {
            guard let value = object[field], !(value is NSNull) else { return [] }
            guard let list = value as? [String] else { throw failure("\"\(field)\" must be an array of strings") }
            for text in list { try noNUL(text, field) }
            return list
        }

        func stringMap(_ field: String) throws(Failure) -> [String: String] {
            guard let value = object[field], !(value is NSNull) else { return [:] }
            guard let map = value as? [String: String] else { throw failure("\"\(field)\" must be an object of string values") }
            for (key, text) in map {
                try noNUL(key, field)
                try noNUL(text, field)
            }
            return map
        }

        /// The server refuses U+0000 in any string (SECURITY.md); said here, it names the place,
        /// where the encoder's refusal read as "INTERNAL: … embeddedNUL".
        func noNUL(_ text: String, _ field: String) throws(Failure) {
            if text.utf8.contains(0) { throw failure("\"\(field)\" contains the character U+0000 (NUL), which strings cannot hold") }
        }

        func nested(_ field: String) throws(Failure) -> Fields? {
            guard let value = object[field], !(value is NSNull) else { return nil }
            guard let map = value as? [String: Any] else { throw failure("\"\(field)\" must be an object") }
            return Fields(map, "\(location).\(field)")
        }

        func number(_ field: String) throws(Failure) -> NSNumber? {
            guard let value = object[field], !(value is NSNull) else { return nil }
            // JSON true/false arrive as NSNumber too (type "c"); `is Bool` holds for 0 and 1 as well.
            guard let number = value as? NSNumber, Self.kind(of: number) != .boolean else {
                throw failure("\"\(field)\" must be a number")
            }
            return number
        }

        func double(_ field: String) throws(Failure) -> Double? {
            guard let number = try number(field) else { return nil }
            let value = number.doubleValue
            guard value.isFinite else { throw failure("\"\(field)\" must be a finite number") }
            return value
        }

        /// A whole number within `range`; refused rather than rounded or wrapped.
        func integer(_ field: String, in range: ClosedRange<Int64> = Int64.min...Int64.max) throws(Failure) -> Int64? {
            guard let number = try number(field) else { return nil }
            let outOfRange = failure("\"\(field)\" is \(number), out of its range \(range.lowerBound)...\(range.upperBound)")
            switch Self.kind(of: number) {
            case .signed:
                guard range.contains(number.int64Value) else { throw outOfRange }
                return number.int64Value
            case .unsigned:
                guard number.uint64Value <= UInt64(Int64.max), range.contains(number.int64Value) else { throw outOfRange }
                return number.int64Value
            case .floating, .boolean:
                let value = number.doubleValue
                guard value.isFinite, value.rounded(.towardZero) == value else {
                    throw failure("\"\(field)\" must be a whole number, got \(number)")
                }
                guard value >= Double(range.lowerBound), value < Double(range.upperBound) + 1 else { throw outOfRange }
                return Int64(value)
            }
        }

        enum NumberKind { case boolean, signed, unsigned, floating }

        /// What JSONSerialization parsed: its NSNumbers keep the type (c: true/false, q: integer,
        /// Q: integer above Int64.max, d: anything with a fraction or exponent).
        static func kind(of number: NSNumber) -> NumberKind {
            switch String(cString: number.objCType) {
            case "c", "B": return .boolean
            case "Q", "L", "I", "S", "C": return .unsigned
            case "q", "l", "i", "s": return .signed
            default: return .floating
            }
        }
    }
}
