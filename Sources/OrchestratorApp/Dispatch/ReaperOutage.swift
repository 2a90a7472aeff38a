/// What the reaper remembers of a database outage, so that it does not reap the leases that ran
/// out inside it. While the database is out no keeper can extend a lease, so every live
/// executor's lease runs out in the database although the executor heartbeats throughout;
/// reaping them the moment the database came back re-ran every task in flight (found by
/// black-box testing). From the outage's start until `reprieve` after the first sweep that
/// succeeds again, only leases that expired before the outage are reaped.
///
/// An outage shows as a sweep that fails (`StoreError.unavailable`) or, during a partition, as
/// one that is merely slow: statements hang, then succeed on a new connection, and nothing fails.
/// Confined to the reaper's loop.
struct ReaperOutage {
    let slowSweep: Duration
    let reprieve: Duration
    private(set) var start: UnixMillis?
    private var reprieveEnds: ContinuousClock.Instant?
    /// When the last successful sweep ended: the database answered then, and may have stopped
    /// answering any time after.
    private var lastAnswered: UnixMillis?

    init(slowSweep: Duration, reprieve: Duration) {
        self.slowSweep = slowSweep
        self.reprieve = reprieve
    }

    /// Leases that expired before this are reaped: `now`, or the outage's start.
    func cutoff(now: UnixMillis) -> UnixMillis { min(start ?? now, now) }

    enum Change { case slowSweepTakenForOutage, reprieveBegan, ended }

    /// A sweep that began at `startedAt` (`clock` on the reaper's own clock) succeeded at `endedAt`.
    mutating func sweepSucceeded(startedAt: UnixMillis, clock started: ContinuousClock.Instant, endedAt: UnixMillis) -> [Change] {
        var changes: [Change] = []
        let now = ContinuousClock.now
        let previouslyAnswered = lastAnswered
        lastAnswered = endedAt
        if start == nil, now - started > slowSweep {
            start = min(previouslyAnswered ?? startedAt, startedAt)
            changes.append(.slowSweepTakenForOutage)
        }
        guard start != nil else { return changes }
        if let ends = reprieveEnds {
            if now >= ends {
                start = nil
                reprieveEnds = nil
                changes.append(.ended)
            }
        } else {
            reprieveEnds = now + reprieve
            changes.append(.reprieveBegan)
        }
        return changes
    }

    /// A sweep that began at `startedAt` failed; `unavailable` when the database could not be
    /// reached. The outage is taken to have begun when the database last answered a sweep (or
    /// when this one began): a failing sweep waits out the connection retries, 14 s and more,
    /// and dating the outage from the failure left the leases that ran out in between to be
    /// reaped as soon as the database was back, their work in flight run twice (found by
    /// black-box testing).
    mutating func sweepFailed(unavailable: Bool, startedAt: UnixMillis) {
        if unavailable, start == nil { start = min(lastAnswered ?? startedAt, startedAt) }
        if start != nil { reprieveEnds = nil }
    }
}
