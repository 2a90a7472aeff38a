public import OrchestratorDomain

/// The opaque input an executor receives with each assignment (`TaskSpec.payload`).
///
/// Explicit graphs carry their payloads in the request; planners instead put the task's parameters in
/// `TaskSpec.metadata` (the query text, the provided inputs it consumes). Such a task's payload is its
/// metadata as a JSON object with sorted keys — JSON being the payload convention of the API — so an
/// executor finds the same parameters whichever way the task was planned.
public enum ExecutorPayload {
    /// The payload of a task without an explicit one: its metadata as JSON, or nothing.
    public static func derived(from spec: TaskSpec) -> [UInt8] {
        spec.metadata.isEmpty ? [] : json(spec.metadata)
    }

    /// Every task's payload: the explicit one when given (even if empty), else the derived one. Tasks
    /// with neither are left out. This is what `NewWorkflow.payloads` should hold.
    public static func payloads(for dag: Dag, explicit: [TaskKey: [UInt8]]) -> [TaskKey: [UInt8]] {
        var out: [TaskKey: [UInt8]] = [:]
        for task in dag.tasks {
            if let given = explicit[task.key] {
                out[task.key] = given
            } else if !task.metadata.isEmpty {
                out[task.key] = json(task.metadata)
            }
        }
        return out
    }

    /// `{"a":"1","b":"2"}`, keys sorted so equal metadata gives equal bytes.
    public static func json(_ object: [String: String]) -> [UInt8] {
        var out: [UInt8] = [UInt8(ascii: "{")]
        for (i, key) in object.keys.sorted().enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            appendString(key, to: &out)
            out.append(UInt8(ascii: ":"))
            appendString(object[key]!, to: &out)
        }
        out.append(UInt8(ascii: "}"))
        return out
    }

    private static func appendString(_ text: String, to out: inout [UInt8]) {
        let hex: [UInt8] = Array("0123456789abcdef".utf8)
        out.append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out += [UInt8(ascii: "\\"), UInt8(ascii: "\"")]
            case UInt8(ascii: "\\"): out += [UInt8(ascii: "\\"), UInt8(ascii: "\\")]
            case UInt8(ascii: "\n"): out += [UInt8(ascii: "\\"), UInt8(ascii: "n")]
            case UInt8(ascii: "\r"): out += [UInt8(ascii: "\\"), UInt8(ascii: "r")]
            case UInt8(ascii: "\t"): out += [UInt8(ascii: "\\"), UInt8(ascii: "t")]
            case 0..<0x20:
                out += Array("\\u00".utf8) + [hex[Int(byte >> 4)], hex[Int(byte & 0xF)]]
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}
