public import Logging

/// A swift-log handler that writes one JSON object per line:
///
///     {"time":"2026-11-26T01:45:08.123Z","level":"info","label":"orchestrator.dispatch",
///      "message":"task leased","executor_id":"ex-1","task_id":"…","trace_id":"…","workflow_id":"wf_…"}
///
/// Metadata is flattened into the object (nested dictionaries as `outer.inner` keys, lists as
/// arrays of strings); keys that would shadow `time`, `level`, `label` or `message` get a
/// `meta_` prefix. Precedence: the call's metadata over the task's `LogContext`, over the
/// logger's own. The level comes from the shared `LogLevelControl` unless a logger sets its own.
public struct JSONLogHandler: LogHandler {
    public let label: String
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    private let control: LogLevelControl
    private let writer: LogLineWriter
    private var overrideLevel: Logger.Level?

    public init(label: String, control: LogLevelControl, writer: LogLineWriter = .standardError, metadataProvider: Logger.MetadataProvider? = nil) {
        self.label = label
        self.control = control
        self.writer = writer
        self.metadataProvider = metadataProvider
    }

    public var logLevel: Logger.Level {
        get { overrideLevel ?? control.level }
        set { overrideLevel = newValue }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get(), !provided.isEmpty {
            merged.merge(provided) { _, new in new }
        }
        if let explicit = event.metadata, !explicit.isEmpty {
            merged.merge(explicit) { _, new in new }
        }
        writer.write(Self.line(time: RFC3339.now(), level: event.level, label: label, message: event.message.description, metadata: merged))
    }

    static let reservedKeys: Set<String> = ["time", "level", "label", "message"]

    /// One encoded line, newline included.
    static func line(time: String, level: Logger.Level, label: String, message: String, metadata: Logger.Metadata) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(128 + message.utf8.count + metadata.count * 48)
        out.append(contentsOf: #"{"time":"#.utf8)
        JSONText.appendString(time, to: &out)
        out.append(contentsOf: #","level":"#.utf8)
        JSONText.appendString(level.rawValue, to: &out)
        out.append(contentsOf: #","label":"#.utf8)
        JSONText.appendString(label, to: &out)
        out.append(contentsOf: #","message":"#.utf8)
        JSONText.appendString(message, to: &out)
        var flat: [(String, Logger.Metadata.Value)] = []
        flatten(metadata, prefix: "", into: &flat)
        // Sorted keys: lines of the same kind read the same way, and tests can compare them.
        flat.sort { $0.0 < $1.0 }
        var seen = Set<String>()
        for (key, value) in flat {
            var name = reservedKeys.contains(key) ? "meta_" + key : key
            while !seen.insert(name).inserted { name = "meta_" + name }
            out.append(UInt8(ascii: ","))
            JSONText.appendString(name, to: &out)
            out.append(UInt8(ascii: ":"))
            appendValue(value, to: &out)
        }
        out.append(contentsOf: "}\n".utf8)
        return out
    }

    private static func flatten(_ metadata: Logger.Metadata, prefix: String, into flat: inout [(String, Logger.Metadata.Value)]) {
        for (key, value) in metadata {
            if case .dictionary(let nested) = value, !nested.isEmpty {
                flatten(nested, prefix: prefix + key + ".", into: &flat)
            } else {
                flat.append((prefix + key, value))
            }
        }
    }

    private static func appendValue(_ value: Logger.Metadata.Value, to out: inout [UInt8]) {
        switch value {
        case .string(let text):
            JSONText.appendString(text, to: &out)
        case .stringConvertible(let convertible):
            JSONText.appendString(convertible.description, to: &out)
        case .array(let items):
            out.append(UInt8(ascii: "["))
            for (index, item) in items.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                appendValue(item, to: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .dictionary:
            // Only an empty dictionary gets here (non-empty ones were flattened).
            out.append(contentsOf: "{}".utf8)
        }
    }
}

/// JSON string encoding (RFC 8259): quotes, backslashes and control characters escaped; other
/// characters (valid UTF-8, as every Swift string is) written as they are.
enum JSONText {
    static func appendString(_ text: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out.append(contentsOf: #"\""#.utf8)
            case UInt8(ascii: "\\"): out.append(contentsOf: #"\\"#.utf8)
            case 0x0a: out.append(contentsOf: #"\n"#.utf8)
            case 0x0d: out.append(contentsOf: #"\r"#.utf8)
            case 0x09: out.append(contentsOf: #"\t"#.utf8)
            case 0..<0x20, 0x7f:
                let hex = Array("0123456789abcdef".utf8)
                out.append(contentsOf: #"\u00"#.utf8)
                out.append(hex[Int(byte >> 4)])
                out.append(hex[Int(byte & 0x0f)])
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}
