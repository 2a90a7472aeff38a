import Synchronization

/// Keeps repeated warnings about one condition (the database is out) from flooding the log:
/// the first of a kind is logged, then at most one per `interval`, carrying how many were
/// left out since. During a 90 s outage at a small load the server wrote about 1,000 lines, the
/// same few messages every second per executor and per call (found by black-box testing).
public final class LogThrottle: Sendable {
    private let interval: UnixMillis
    private let clock: any WallClock
    private let state = Mutex<[String: (lastLogged: UnixMillis, suppressed: Int)]>([:])
    static let maxKinds = 1_000

    public init(interval: Duration = .seconds(30), clock: any WallClock = SystemWallClock()) {
        self.interval = UnixMillis(interval.components.seconds * 1000 + interval.components.attoseconds / 1_000_000_000_000_000)
        self.clock = clock
    }

    /// Whether to log this occurrence of `kind`, and how many were left out before it (log it
    /// as `suppressed` metadata); nil when this one is left out too.
    public func admit(_ kind: String) -> Int? {
        let now = clock.now()
        return state.withLock { state -> Int? in
            guard let entry = state[kind] else {
                // Kinds may carry a reason; many distinct ones are not a flood of one.
                if state.count >= Self.maxKinds { state.removeAll() }
                state[kind] = (now, 0)
                return 0
            }
            guard now - entry.lastLogged >= interval else {
                state[kind]?.suppressed += 1
                return nil
            }
            state[kind] = (now, 0)
            return entry.suppressed
        }
    }
}
