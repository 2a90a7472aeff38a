public import Logging
import Synchronization

/// The process's log level, changeable while it runs (`PUT /loglevel` on the admin port).
///
/// Every handler made by `ObservabilityLogging` reads its level from here on each call (one
/// relaxed atomic load), so a change applies at once to loggers that already exist.
public final class LogLevelControl: Sendable {
    private let raw: Atomic<UInt8>
    /// The level the process started with, restored by `reset()`.
    public let initial: Logger.Level

    public init(_ level: Logger.Level) {
        initial = level
        raw = Atomic(Self.code(level))
    }

    public var level: Logger.Level {
        get { Self.levels[Int(raw.load(ordering: .relaxed))] }
        set { raw.store(Self.code(newValue), ordering: .relaxed) }
    }

    public func reset() {
        level = initial
    }

    private static let levels = Logger.Level.allCases

    private static func code(_ level: Logger.Level) -> UInt8 {
        UInt8(levels.firstIndex(of: level)!)
    }
}
