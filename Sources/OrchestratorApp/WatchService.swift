import Logging

/// Tails the event log for watchers: past events first, then live ones as they are appended,
/// woken by `ChangeSignals` (NOTIFY) rather than polling. Caught-up watchers share one read of
/// each change (`EventTail`); a watcher behind reads the store until it has caught up.
///
/// Sequences come from a database sequence, so in a store where a transaction that took sequence
/// 9 may commit after one that took 10, a watcher that has seen 8 and finds 10 waits up to
/// `gapGrace` for 9 before moving on (a rolled-back transaction leaves a permanent gap), so
/// in-flight commits are not skipped. PostgreSQL's log hands sequences out in commit order
/// (migration 0006, `sequencesBecomeVisibleInOrder`): there every hole is permanent, and waiting
/// at each one made a relay replaying a range thinned by retention wait 0.5 s per surviving event.
public struct WatchService: Sendable {
    let events: any EventStore
    let signals: ChangeSignals
    let batchSize: Int
    let gapGrace: Duration
    /// Safety net only: how long a watcher sleeps without a signal before reading again.
    let idleRecheck: Duration
    let tail: EventTail

    /// - Parameter recentEvents: how many of the newest events caught-up watchers share (`EventTail`).
    public init(
        events: any EventStore, signals: ChangeSignals, batchSize: Int = 500, gapGrace: Duration = .milliseconds(500),
        idleRecheck: Duration = .seconds(5), recentEvents: Int = 20_000
    ) {
        self.events = events
        self.signals = signals
        self.batchSize = batchSize
        self.gapGrace = gapGrace
        self.idleRecheck = idleRecheck
        // The window is read again without a signal as often as a watcher would read the log
        // without one (the safety net for a lost NOTIFY).
        tail = EventTail(events: events, signals: signals, maxEvents: recentEvents, maxStaleness: idleRecheck)
    }

    /// Returns once the server's graceful shutdown has begun (or the task is cancelled): for calls
    /// that follow workflows while reading requests, which a shutdown must end too.
    public func shutdownBegan() async { await signals.shutdownBegan() }

    /// Delivers events after `query.afterSequence` to `emit`, in order, each once, until
    /// `stopWhen` returns true for a delivered event, or the task is cancelled. `emit` may
    /// suspend (flow control); nothing is read ahead meanwhile. With `endWhenCaughtUp` it also
    /// returns once nothing is left after the cursor: for a watcher resuming past the final
    /// event of a workflow that already finished, which no future event would ever end.
    /// `finishedMeanwhile` is asked whenever the watch is caught up without having delivered
    /// anything: a cursor past every event of a workflow still running (a resume point from a
    /// restored database, or a mistake) would otherwise wait for a final event it is already
    /// past, forever (found by black-box testing). Once an event was delivered, the final event is
    /// ahead of the cursor and ends the watch through `stopWhen`. `gone` is called once per
    /// `idleRecheck` in which nothing was delivered; it ends the watch by throwing.
    public func follow(
        _ query: EventQuery,
        stopWhen: @Sendable (StoredEvent) -> Bool = { _ in false },
        endWhenCaughtUp: Bool = false,
        finishedMeanwhile: (@Sendable () async throws -> Bool)? = nil,
        gone: (@Sendable () async throws -> Void)? = nil,
        emit: (StoredEvent) async throws -> Void
    ) async throws {
        var cursor = query.afterSequence
        /// Where the next search of the shared window starts (`EventTail.batch`); at or past the
        /// cursor, which stays the last event delivered (the resume point the watcher is told).
        var searchedThrough = cursor
        var deliveredAny = false
        var finishedSeen = false
        var gapSeenAt: ContinuousClock.Instant?
        var nextGoneCheck = ContinuousClock.now + idleRecheck
        while !Task.isCancelled {
            if signals.isShuttingDown { throw WatchInterrupted(lastSequence: cursor) }
            let generation = signals.generation(.events)
            var batchQuery = query
            batchQuery.afterSequence = max(cursor, searchedThrough)
            batchQuery.limit = batchSize
            let batch: [StoredEvent]
            var searched: Int64?
            do {
                if !tail.unsupported.load(ordering: .relaxed), let recent = try await tail.batch(batchQuery, generation: generation) {
                    batch = recent.events
                    searched = recent.searchedThrough
                } else {
                    batch = try await events.events(batchQuery)
                }
            } catch StoreError.unavailable(let reason) {
                // The watcher resumes once the database is back, from the last event it got.
                throw WatchStorageUnavailable(lastSequence: cursor, reason: reason)
            } catch let error as StoreError {
                throw AppError(error)
            }
            var delivered = 0
            for event in batch {
                // A hole right after the cursor may be a transaction still committing; a filtered
                // query (one workflow) cannot tell, so only unfiltered tails wait on gaps.
                if !events.sequencesBecomeVisibleInOrder, query.workflowID == nil, query.tenant == nil, event.sequence != cursor + 1 {
                    let now = ContinuousClock.now
                    if let since = gapSeenAt, now - since >= gapGrace {
                        gapSeenAt = nil
                    } else {
                        if gapSeenAt == nil { gapSeenAt = now }
                        break
                    }
                }
                try await emit(event)
                nextGoneCheck = ContinuousClock.now + idleRecheck
                cursor = event.sequence
                delivered += 1
                deliveredAny = true
                gapSeenAt = nil
                if stopWhen(event) { return }
            }
            // Past the events that are not this watcher's only once every one found was delivered
            // (a gap or a stop leaves the rest to the next search).
            searchedThrough = delivered == batch.count ? max(cursor, searched ?? cursor) : cursor
            if delivered == batch.count, batch.count == batchSize { continue }
            if endWhenCaughtUp, batch.isEmpty { return }
            if batch.isEmpty, !deliveredAny, let finishedMeanwhile {
                // Finished: read once more before ending. The final event commits with the state,
                // and may have landed after this batch was read; for a cursor before it, that
                // read delivers it (and `stopWhen` ends the watch).
                if finishedSeen { return }
                if try await finishedMeanwhile() {
                    finishedSeen = true
                    continue
                }
            }
            if gapSeenAt != nil {
                try await Task.sleep(for: .milliseconds(20))
                continue
            }
            await signals.wait(.events, after: generation, timeout: idleRecheck)
            // Other workflows' events wake a filtered watcher too, so by time, not by signal.
            if let gone, ContinuousClock.now >= nextGoneCheck {
                try await gone()
                nextGoneCheck = ContinuousClock.now + idleRecheck
            }
        }
        throw CancellationError()
    }
}

/// A watch ended by the server's graceful shutdown; the watcher resumes (after a restart, or on
/// another server) after `lastSequence`, the last event it was sent.
public struct WatchInterrupted: Error, Sendable {
    public let lastSequence: Int64
}

/// A watch ended because the database could not be reached; the watcher resumes after
/// `lastSequence` once it is back. (It ended with the generic "temporarily unavailable", so a
/// watcher could not tell where to resume; found by black-box testing.) `reason` names database
/// internals: logged, not sent.
public struct WatchStorageUnavailable: Error, Sendable {
    public let lastSequence: Int64
    public let reason: String

    public init(lastSequence: Int64, reason: String) {
        self.lastSequence = lastSequence
        self.reason = reason
    }
}
