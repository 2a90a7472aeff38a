public import Logging
import Synchronization

/// The process's log level, changeable while it runs (`PUT /loglevel` on the admin port).
///
/// Every handler made by `ObservabilityLogging` reads its level from here on each call (one
/// relaxed atomic load), so a change applies at once to loggers that already exist.
public final class LogLevelControl: Sendable {
    private let raw: Atomic<UInt8>
    private let initialRaw: Atomic<UInt8>

    /// The control of the process's own loggers, configured at start-up.
    public static let process = LogLevelControl(.info)

    public init(_ level: Logger.Level) {
        raw = Atomic(Self.code(level))
        initialRaw = Atomic(Self.code(level))
    }

    public var level: Logger.Level {
        get { Self.levels[Int(raw.load(ordering: .relaxed))] }
        set { raw.store(Self.code(newValue), ordering: .relaxed) }
    }

    /// The level the process was configured with, restored by `reset()`.
    public var initial: Logger.Level { Self.levels[Int(initialRaw.load(ordering: .relaxed))] }

    /// Sets both the current and the configured level (at start-up).
    public func configure(_ level: Logger.Level) {
        initialRaw.store(Self.code(level), ordering: .relaxed)
        raw.store(Self.code(level), ordering: .relaxed)
    }

    public func reset() {
        level = initial
    }

    private static let levels = Logger.Level.allCases

    private static func code(_ level: Logger.Level) -> UInt8 {
        UInt8(levels.firstIndex(of: level)!)
    }
}
