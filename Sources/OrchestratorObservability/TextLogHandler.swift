public import Logging

/// swift-log's `StreamLogHandler` (human-readable lines on stderr) with its level taken from the
/// shared `LogLevelControl`, for `--log-format text`.
public struct TextLogHandler: LogHandler {
    private var inner: StreamLogHandler
    private let control: LogLevelControl
    private var overrideLevel: Logger.Level?

    public init(label: String, control: LogLevelControl, metadataProvider: Logger.MetadataProvider? = nil) {
        inner = StreamLogHandler.standardError(label: label, metadataProvider: metadataProvider)
        // The inner handler filters nothing: Logger checks `logLevel` below before calling `log`.
        inner.logLevel = .trace
        self.control = control
    }

    public var logLevel: Logger.Level {
        get { overrideLevel ?? control.level }
        set { overrideLevel = newValue }
    }

    public var metadata: Logger.Metadata {
        get { inner.metadata }
        set { inner.metadata = newValue }
    }

    public var metadataProvider: Logger.MetadataProvider? {
        get { inner.metadataProvider }
        set { inner.metadataProvider = newValue }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { inner[metadataKey: key] }
        set { inner[metadataKey: key] = newValue }
    }

    public func log(event: LogEvent) {
        inner.log(event: event)
    }
}

/// How log lines are written.
public enum LogFormat: String, Sendable, CaseIterable {
    /// One JSON object per line (the default for orchestratord: for log collectors).
    case json
    /// swift-log's readable `time level label: [metadata] message` lines.
    case text
}

/// Installs the process-wide logging backend once, at start-up.
public enum ObservabilityLogging {
    /// Bootstraps swift-log with `format` handlers reading their level from `control` and adding
    /// `LogContext` metadata to every line. Call once, before any `Logger` is made.
    public static func bootstrap(format: LogFormat, control: LogLevelControl) {
        LoggingSystem.bootstrap({ label, provider in
            switch format {
            case .json: JSONLogHandler(label: label, control: control, metadataProvider: provider)
            case .text: TextLogHandler(label: label, control: control, metadataProvider: provider)
            }
        }, metadataProvider: LogContext.provider)
    }
}
