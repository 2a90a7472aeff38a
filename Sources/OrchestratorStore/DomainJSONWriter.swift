import Foundation
import OrchestratorDomain

/// Writes the JSON of the DAGs and queries the store keeps (`dag_versions.graph`,
/// `queries.message`, and through the graph every task's `tasks.metadata`) without `JSONEncoder`.
///
/// Every submission encodes its DAG twice (as the graph, and inside the query as its explicit
/// graph); with `JSONEncoder`'s generic containers that was about 1.7 ms of a 50-task
/// SubmitQuery, spent while the tasks' ready time was already running (tools/bench latency), and
/// seconds for a 100,000-task DAG. The documents are the synthesized `Codable` shapes, which the
/// readers (`JSONDecoder`, `TaskSpecJSON`, the task insert's jsonb expressions) expect: every
/// non-optional property present, nil optionals left out, keys in ASCII order, enums as their raw
/// values, sets as sorted arrays. `DomainJSONWriterTests` checks the documents against
/// `JSONEncoder`'s, so a property added to a domain type without a line here fails there.
enum DomainJSONWriter {
    static func dag(_ dag: Dag) throws -> [UInt8] {
        var writer = JSONBytes(capacity: 256 + dag.tasks.count * 400 + dag.edges.count * 32)
        try writer.dag(dag)
        return writer.bytes
    }

    static func query(_ query: Query) throws -> [UInt8] {
        var writer = JSONBytes(capacity: 256 + (query.explicitGraph.map { $0.tasks.count * 400 + $0.edges.count * 32 } ?? 0))
        try writer.query(query)
        return writer.bytes
    }
}

/// A JSON document being written into a byte array.
struct JSONBytes {
    private(set) var bytes: [UInt8] = []

    init(capacity: Int) {
        bytes.reserveCapacity(capacity)
    }

    // MARK: Domain shapes (keys in ASCII order)

    mutating func dag(_ dag: Dag) throws {
        raw("{\"edges\":[")
        for (index, edge) in dag.edges.enumerated() {
            if index > 0 { bytes.append(UInt8(ascii: ",")) }
            raw("{\"from\":")
            string(edge.from.rawValue)
            raw(",\"to\":")
            string(edge.to.rawValue)
            bytes.append(UInt8(ascii: "}"))
        }
        raw("],\"tasks\":[")
        for (index, task) in dag.tasks.enumerated() {
            if index > 0 { bytes.append(UInt8(ascii: ",")) }
            try taskSpec(task)
        }
        raw("]}")
    }

    mutating func taskSpec(_ task: TaskSpec) throws {
        raw("{\"complexity\":")
        string(task.complexity.rawValue)
        raw(",\"description\":")
        string(task.description)
        raw(",\"estimatedCost\":")
        try double(task.estimatedCost)
        if let heartbeat = task.heartbeatTimeoutSeconds {
            raw(",\"heartbeatTimeoutSeconds\":")
            int(heartbeat)
        }
        raw(",\"inputs\":")
        strings(task.inputs)
        raw(",\"key\":")
        string(task.key.rawValue)
        raw(",\"labels\":")
        stringMap(task.labels)
        raw(",\"metadata\":")
        stringMap(task.metadata)
        raw(",\"name\":")
        string(task.name)
        raw(",\"outputs\":")
        strings(task.outputs)
        raw(",\"priority\":")
        int(task.priority)
        raw(",\"rationale\":")
        string(task.rationale)
        raw(",\"requiredCapabilities\":")
        strings(task.requiredCapabilities)
        raw(",\"resources\":{\"cpuMillis\":")
        int(task.resources.cpuMillis)
        raw(",\"custom\":")
        intMap(task.resources.custom)
        raw(",\"gpus\":")
        int(task.resources.gpus)
        raw(",\"memoryMiB\":")
        int(task.resources.memoryMiB)
        raw("},\"retry\":{\"backoffMultiplier\":")
        try double(task.retry.backoffMultiplier)
        raw(",\"initialBackoffMillis\":")
        int(task.retry.initialBackoffMillis)
        raw(",\"maxAttempts\":")
        int(task.retry.maxAttempts)
        raw(",\"maxBackoffMillis\":")
        int(task.retry.maxBackoffMillis)
        raw("},\"retryJitter\":")
        try double(task.retryJitter)
        if let timeout = task.timeoutSeconds {
            raw(",\"timeoutSeconds\":")
            int(timeout)
        }
        bytes.append(UInt8(ascii: "}"))
    }

    mutating func query(_ query: Query) throws {
        raw("{\"constraints\":{")
        if !query.constraints.allowedCapabilities.isEmpty {
            raw("\"allowedCapabilities\":")
            strings(query.constraints.allowedCapabilities.sorted())
            raw(",")
        }
        raw("\"excludedCapabilities\":")
        strings(query.constraints.excludedCapabilities.sorted())
        if let maxTasks = query.constraints.maxTasks {
            raw(",\"maxTasks\":")
            int(maxTasks)
        }
        if let maxTotalCost = query.constraints.maxTotalCost {
            raw(",\"maxTotalCost\":")
            try double(maxTotalCost)
        }
        bytes.append(UInt8(ascii: "}"))
        if let graph = query.explicitGraph {
            raw(",\"explicitGraph\":")
            try dag(graph)
        }
        if let goal = query.goal {
            raw(",\"goal\":{\"artifacts\":")
            strings(goal.artifacts)
            bytes.append(UInt8(ascii: "}"))
        }
        raw(",\"labels\":")
        stringMap(query.labels)
        if let hint = query.plannerHint {
            raw(",\"plannerHint\":")
            string(hint)
        }
        raw(",\"priority\":")
        int(query.priority)
        raw(",\"providedInputs\":")
        stringMap(query.providedInputs)
        raw(",\"text\":")
        string(query.text)
        bytes.append(UInt8(ascii: "}"))
    }

    // MARK: Values

    mutating func raw(_ text: StaticString) {
        text.withUTF8Buffer { bytes.append(contentsOf: $0) }
    }

    /// RFC 8259 string: quote, backslash and control characters escaped; the rest as UTF-8.
    mutating func string(_ value: String) {
        bytes.append(UInt8(ascii: "\""))
        var value = value
        value.withUTF8 { utf8 in
            var start = 0
            for index in 0..<utf8.count {
                let byte = utf8[index]
                guard byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") else { continue }
                bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[start..<index]))
                start = index + 1
                switch byte {
                case UInt8(ascii: "\""): raw("\\\"")
                case UInt8(ascii: "\\"): raw("\\\\")
                case UInt8(ascii: "\n"): raw("\\n")
                case UInt8(ascii: "\r"): raw("\\r")
                case UInt8(ascii: "\t"): raw("\\t")
                case 0x08: raw("\\b")
                case 0x0C: raw("\\f")
                default:
                    raw("\\u00")
                    bytes.append(Self.hexDigits[Int(byte >> 4)])
                    bytes.append(Self.hexDigits[Int(byte & 0x0F)])
                }
            }
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[start..<utf8.count]))
        }
        bytes.append(UInt8(ascii: "\""))
    }

    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    mutating func int(_ value: Int) {
        if value == 0 {
            bytes.append(UInt8(ascii: "0"))
            return
        }
        if value < 0 { bytes.append(UInt8(ascii: "-")) }
        // Magnitude as UInt: Int.min has no positive Int.
        var magnitude = value.magnitude
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                     UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var count = 0
        withUnsafeMutableBytes(of: &digits) { buffer in
            while magnitude > 0 {
                buffer[19 - count] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
                count += 1
            }
            bytes.append(contentsOf: buffer[(20 - count)...])
        }
    }

    /// The shortest text that reads back as the same Double, as `JSONEncoder` writes it ("1", not
    /// "1.0"); non-finite numbers are refused as `JSONEncoder` refuses them.
    mutating func double(_ value: Double) throws {
        guard value.isFinite else {
            throw EncodingError.invalidValue(value, .init(codingPath: [], debugDescription: "Unable to encode \(value) directly in JSON."))
        }
        // Whole numbers (an estimated cost of 1, a backoff multiplier of 2: most specs) as
        // integers: `description` was 4 % of a 50-task submission's CPU. Below 1e15 its spelling is
        // the integer's; -0 keeps its sign through `description`.
        if value.rounded(.towardZero) == value, value.magnitude < 1e15, !(value == 0 && value.sign == .minus) {
            int(Int(value))
            return
        }
        var text = value.description
        if text.hasSuffix(".0") { text.removeLast(2) }
        bytes.append(contentsOf: text.utf8)
    }

    mutating func strings(_ values: [String]) {
        bytes.append(UInt8(ascii: "["))
        for (index, value) in values.enumerated() {
            if index > 0 { bytes.append(UInt8(ascii: ",")) }
            string(value)
        }
        bytes.append(UInt8(ascii: "]"))
    }

    mutating func stringMap(_ map: [String: String]) {
        object(map) { $0.string($1) }
    }

    mutating func intMap(_ map: [String: Int]) {
        object(map) { $0.int($1) }
    }

    /// A JSON object of `map`, keys sorted.
    private mutating func object<Value>(_ map: [String: Value], value write: (inout JSONBytes, Value) -> Void) {
        bytes.append(UInt8(ascii: "{"))
        for (index, key) in map.keys.sorted().enumerated() {
            if index > 0 { bytes.append(UInt8(ascii: ",")) }
            string(key)
            bytes.append(UInt8(ascii: ":"))
            write(&self, map[key]!)
        }
        bytes.append(UInt8(ascii: "}"))
    }
}
