/// Bounds a graph must respect. The defaults suit graphs submitted over the API; the benchmark and
/// trusted internal callers pass larger ones.
public struct ValidationLimits: Hashable, Sendable {
    public var maxTasks: Int
    public var maxEdges: Int
    /// Most upstream tasks one task may have.
    public var maxFanIn: Int
    /// Most downstream tasks one task may have.
    public var maxFanOut: Int
    /// Most tasks on one dependency chain (a single task has depth 1): bounds how many rounds of
    /// dispatch one workflow can need.
    public var maxDepth: Int
    /// Longest task key, in UTF-8 bytes.
    public var maxKeyLength: Int
    public var keyCharset: KeyCharset
    /// Most bytes of labels plus metadata (keys and values, UTF-8) one task may carry.
    public var maxMetadataBytesPerTask: Int
    /// Most bytes of labels plus metadata all tasks of one graph carry together. The query's labels
    /// are copied onto each task, so without this a request of a few hundred KB could make a graph
    /// of gigabytes (tasks × the per-task limit).
    public var maxMetadataBytesPerGraph: Int = 64 * 1024 * 1024
    /// Longest required capability, in UTF-8 bytes, and most capabilities one task may require: the
    /// bounds executors must respect when they advertise capabilities, so every valid task can be leased.
    public var maxCapabilityLength: Int = 128
    public var maxCapabilitiesPerTask: Int = 256
    /// Validation counts every problem but keeps only this many issue values (a graph with a million bad
    /// edges should not produce a million messages).
    public var maxReportedIssues: Int

    public init(
        maxTasks: Int = 100_000, maxEdges: Int = 1_000_000, maxFanIn: Int = 10_000, maxFanOut: Int = 10_000,
        maxKeyLength: Int = 128, keyCharset: KeyCharset = .default, maxMetadataBytesPerTask: Int = 64 * 1024,
        maxReportedIssues: Int = 100, maxDepth: Int = 10_000
    ) {
        self.maxDepth = maxDepth
        self.maxTasks = maxTasks
        self.maxEdges = maxEdges
        self.maxFanIn = maxFanIn
        self.maxFanOut = maxFanOut
        self.maxKeyLength = maxKeyLength
        self.keyCharset = keyCharset
        self.maxMetadataBytesPerTask = maxMetadataBytesPerTask
        self.maxReportedIssues = maxReportedIssues
    }

    public static let `default` = ValidationLimits()

    /// No size limits (charset and key length still apply): for benchmarks and trusted generators.
    public static let unbounded = ValidationLimits(
        maxTasks: Int(Int32.max) - 1, maxEdges: Int(Int32.max) - 1, maxFanIn: .max, maxFanOut: .max, maxDepth: .max)
}

/// The ASCII characters a task key may contain, as a 128-bit set, with a description for messages.
public struct KeyCharset: Hashable, Sendable {
    private var low: UInt64 = 0  // bytes 0..<64
    private var high: UInt64 = 0  // bytes 64..<128
    public var description: String

    /// Builds a charset from explicit ASCII characters.
    public init(allowing characters: String, description: String) {
        self.description = description
        for byte in characters.utf8 where byte < 128 {
            if byte < 64 { low |= 1 << UInt64(byte) } else { high |= 1 << UInt64(byte - 64) }
        }
    }

    @inline(__always)
    public func allows(_ byte: UInt8) -> Bool {
        if byte < 64 { return low & (1 << UInt64(byte)) != 0 }
        if byte < 128 { return high & (1 << UInt64(byte - 64)) != 0 }
        return false
    }

    /// Letters, digits, `-`, `_`, `.` and `:`: safe in URLs, SQL identifiers-as-data, DOT and Mermaid.
    public static let `default` = KeyCharset(
        allowing: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:",
        description: "ASCII letters, digits, '-', '_', '.' and ':'")
}
