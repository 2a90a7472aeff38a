import Foundation
import OrchestratorDomain

/// Reads a `TaskSpec` from the JSON of `tasks.metadata` without `JSONDecoder`.
///
/// Every claimed task's spec is decoded on the dispatch hot path, and `JSONDecoder`'s generic
/// keyed containers made that the largest single cost of a claim in the server (about 10 % of its
/// CPU in the dispatch bench). This reader knows the one shape the store writes (the synthesized
/// `Codable` form of `TaskSpec`, as PostgreSQL's jsonb prints it back) and accepts exactly what
/// the synthesized decoder accepts for it: required keys present, optional ones absent or null,
/// unknown keys ignored, integers written as integers. Anything else — a malformed document, a
/// type it does not expect, a number it cannot represent — returns nil, and the caller falls back to
/// `JSONDecoder`, which then reports the problem. So the result, when there is one, is the same.
enum TaskSpecJSON {
    /// The fast reader, else `JSONDecoder` (which throws what is wrong).
    static func decodeOrThrow(_ text: String, decoder: JSONDecoder) throws -> TaskSpec {
        if let spec = decode(text) { return spec }
        return try decoder.decode(TaskSpec.self, from: Data(text.utf8))
    }

    static func decode(_ text: String) -> TaskSpec? {
        var text = text
        return text.withUTF8 { bytes -> TaskSpec? in
            var parser = Parser(bytes: bytes)
            guard let value = parser.parseDocument(), case .object(let fields) = value else { return nil }
            return taskSpec(fields)
        }
    }

    private static func taskSpec(_ fields: [String: Value]) -> TaskSpec? {
        guard let key = fields["key"]?.string, let name = fields["name"]?.string,
            let description = fields["description"]?.string,
            let requiredCapabilities = fields["requiredCapabilities"]?.strings, let inputs = fields["inputs"]?.strings,
            let outputs = fields["outputs"]?.strings, let complexityName = fields["complexity"]?.string,
            let complexity = Complexity(rawValue: complexityName), let estimatedCost = fields["estimatedCost"]?.double,
            let priority = fields["priority"]?.int, let resources = fields["resources"].flatMap(resourceNeeds),
            let retry = fields["retry"].flatMap(retryPolicy), let retryJitter = fields["retryJitter"]?.double,
            let labels = fields["labels"]?.stringMap, let metadata = fields["metadata"]?.stringMap,
            let rationale = fields["rationale"]?.string,
            let timeoutSeconds = optionalInt(fields["timeoutSeconds"]),
            let heartbeatTimeoutSeconds = optionalInt(fields["heartbeatTimeoutSeconds"])
        else { return nil }
        return TaskSpec(
            key: TaskKey(key), name: name, requiredCapabilities: requiredCapabilities, inputs: inputs, outputs: outputs,
            complexity: complexity, estimatedCost: estimatedCost, priority: priority, resources: resources,
            timeoutSeconds: timeoutSeconds, heartbeatTimeoutSeconds: heartbeatTimeoutSeconds, retry: retry, labels: labels,
            metadata: metadata, rationale: rationale, description: description, retryJitter: retryJitter)
    }

    /// `.some(nil)` for absent or null, `.some(n)` for an integer, nil when it is anything else.
    private static func optionalInt(_ value: Value?) -> Int?? {
        switch value {
        case nil, .null?: return .some(nil)
        case let value?: return value.int.map { .some($0) }
        }
    }

    private static func resourceNeeds(_ value: Value) -> ResourceNeeds? {
        guard case .object(let fields) = value, let cpu = fields["cpuMillis"]?.int, let memory = fields["memoryMiB"]?.int,
            let gpus = fields["gpus"]?.int, case .object(let customFields)? = fields["custom"]
        else { return nil }
        var custom: [String: Int] = [:]
        for (name, amount) in customFields {
            guard let amount = amount.int else { return nil }
            custom[name] = amount
        }
        return ResourceNeeds(cpuMillis: cpu, memoryMiB: memory, gpus: gpus, custom: custom)
    }

    private static func retryPolicy(_ value: Value) -> RetryPolicy? {
        guard case .object(let fields) = value, let maxAttempts = fields["maxAttempts"]?.int,
            let initial = fields["initialBackoffMillis"]?.int, let maximum = fields["maxBackoffMillis"]?.int,
            let multiplier = fields["backoffMultiplier"]?.double
        else { return nil }
        return RetryPolicy(maxAttempts: maxAttempts, initialBackoffMillis: initial, maxBackoffMillis: maximum, backoffMultiplier: multiplier)
    }

    enum Value {
        case string(String)
        /// The number's text, converted only when a field asks for it.
        case number(String)
        case bool(Bool)
        case null
        case array([Value])
        case object([String: Value])

        var string: String? {
            if case .string(let text) = self { return text }
            return nil
        }

        var strings: [String]? {
            guard case .array(let items) = self else { return nil }
            var strings: [String] = []
            strings.reserveCapacity(items.count)
            for item in items {
                guard let text = item.string else { return nil }
                strings.append(text)
            }
            return strings
        }

        var stringMap: [String: String]? {
            guard case .object(let fields) = self else { return nil }
            var map: [String: String] = [:]
            for (name, value) in fields {
                guard let text = value.string else { return nil }
                map[name] = text
            }
            return map
        }

        /// Integers only (no fraction or exponent), as the synthesized decoder requires for `Int`.
        var int: Int? {
            guard case .number(let text) = self, !text.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }) else { return nil }
            return Int(text)
        }

        var double: Double? {
            guard case .number(let text) = self, let value = Double(text), value.isFinite else { return nil }
            return value
        }
    }

    /// A strict RFC 8259 reader over UTF-8 bytes, nesting bounded.
    struct Parser {
        let bytes: UnsafeBufferPointer<UInt8>
        var index = 0
        var depth = 0

        init(bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

        mutating func parseDocument() -> Value? {
            guard let value = parseValue() else { return nil }
            skipWhitespace()
            return index == bytes.count ? value : nil
        }

        private mutating func skipWhitespace() {
            while index < bytes.count, bytes[index] == 0x20 || bytes[index] == 0x0A || bytes[index] == 0x0D || bytes[index] == 0x09 {
                index += 1
            }
        }

        private mutating func parseValue() -> Value? {
            skipWhitespace()
            guard index < bytes.count else { return nil }
            switch bytes[index] {
            case UInt8(ascii: "{"): return parseObject()
            case UInt8(ascii: "["): return parseArray()
            case UInt8(ascii: "\""): return parseString().map(Value.string)
            case UInt8(ascii: "t"): return literal("true", .bool(true))
            case UInt8(ascii: "f"): return literal("false", .bool(false))
            case UInt8(ascii: "n"): return literal("null", .null)
            default: return parseNumber()
            }
        }

        private mutating func literal(_ word: StaticString, _ value: Value) -> Value? {
            let count = word.utf8CodeUnitCount
            guard index + count <= bytes.count else { return nil }
            for offset in 0..<count where bytes[index + offset] != word.utf8Start[offset] { return nil }
            index += count
            return value
        }

        private mutating func parseObject() -> Value? {
            depth += 1
            defer { depth -= 1 }
            guard depth <= 32 else { return nil }
            index += 1
            var fields: [String: Value] = [:]
            skipWhitespace()
            if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
                index += 1
                return .object(fields)
            }
            while true {
                skipWhitespace()
                guard index < bytes.count, bytes[index] == UInt8(ascii: "\""), let name = parseString() else { return nil }
                skipWhitespace()
                guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { return nil }
                index += 1
                guard let value = parseValue() else { return nil }
                fields[name] = value
                skipWhitespace()
                guard index < bytes.count else { return nil }
                if bytes[index] == UInt8(ascii: ",") {
                    index += 1
                } else if bytes[index] == UInt8(ascii: "}") {
                    index += 1
                    return .object(fields)
                } else {
                    return nil
                }
            }
        }

        private mutating func parseArray() -> Value? {
            depth += 1
            defer { depth -= 1 }
            guard depth <= 32 else { return nil }
            index += 1
            var items: [Value] = []
            skipWhitespace()
            if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
                index += 1
                return .array(items)
            }
            while true {
                guard let item = parseValue() else { return nil }
                items.append(item)
                skipWhitespace()
                guard index < bytes.count else { return nil }
                if bytes[index] == UInt8(ascii: ",") {
                    index += 1
                } else if bytes[index] == UInt8(ascii: "]") {
                    index += 1
                    return .array(items)
                } else {
                    return nil
                }
            }
        }

        /// At an opening quote; returns the unescaped string and moves past the closing quote.
        private mutating func parseString() -> String? {
            index += 1
            let start = index
            // Fast path: no escapes.
            while index < bytes.count {
                let byte = bytes[index]
                if byte == UInt8(ascii: "\"") {
                    let text = String(validating: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
                    index += 1
                    return text
                }
                if byte == UInt8(ascii: "\\") { break }
                if byte < 0x20 { return nil }
                index += 1
            }
            var scalars: [UInt8] = Array(bytes[start..<index])
            while index < bytes.count {
                let byte = bytes[index]
                switch byte {
                case UInt8(ascii: "\""):
                    index += 1
                    return String(validating: scalars, as: UTF8.self)
                case UInt8(ascii: "\\"):
                    index += 1
                    guard index < bytes.count else { return nil }
                    let escape = bytes[index]
                    index += 1
                    switch escape {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): scalars.append(escape)
                    case UInt8(ascii: "b"): scalars.append(0x08)
                    case UInt8(ascii: "f"): scalars.append(0x0C)
                    case UInt8(ascii: "n"): scalars.append(0x0A)
                    case UInt8(ascii: "r"): scalars.append(0x0D)
                    case UInt8(ascii: "t"): scalars.append(0x09)
                    case UInt8(ascii: "u"):
                        guard var code = hex4() else { return nil }
                        if (0xD800...0xDBFF).contains(code) {
                            // A high surrogate must be followed by an escaped low one.
                            guard index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u")
                            else { return nil }
                            index += 2
                            guard let low = hex4(), (0xDC00...0xDFFF).contains(low) else { return nil }
                            code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                        } else if (0xDC00...0xDFFF).contains(code) {
                            return nil
                        }
                        guard let scalar = Unicode.Scalar(code) else { return nil }
                        scalars.append(contentsOf: String(Character(scalar)).utf8)
                    default:
                        return nil
                    }
                default:
                    if byte < 0x20 { return nil }
                    scalars.append(byte)
                    index += 1
                }
            }
            return nil
        }

        private mutating func hex4() -> UInt32? {
            guard index + 4 <= bytes.count else { return nil }
            var value: UInt32 = 0
            for _ in 0..<4 {
                let byte = bytes[index]
                let digit: UInt32
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(byte - UInt8(ascii: "0"))
                case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(byte - UInt8(ascii: "a") + 10)
                case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(byte - UInt8(ascii: "A") + 10)
                default: return nil
                }
                value = value << 4 | digit
                index += 1
            }
            return value
        }

        /// RFC 8259 number grammar; the text is kept for the field to convert.
        private mutating func parseNumber() -> Value? {
            let start = index
            if index < bytes.count, bytes[index] == UInt8(ascii: "-") { index += 1 }
            guard index < bytes.count else { return nil }
            if bytes[index] == UInt8(ascii: "0") {
                index += 1
            } else if (UInt8(ascii: "1")...UInt8(ascii: "9")).contains(bytes[index]) {
                while index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) { index += 1 }
            } else {
                return nil
            }
            if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
                index += 1
                let digits = index
                while index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) { index += 1 }
                guard index > digits else { return nil }
            }
            if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
                index += 1
                if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
                let digits = index
                while index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) { index += 1 }
                guard index > digits else { return nil }
            }
            return .number(String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self))
        }
    }
}
