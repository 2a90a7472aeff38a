import OrchestratorDomain
import Synchronization

/// The newest events of the log, read once per change for every watcher of this server.
///
/// Each watcher used to read the log itself at every NOTIFY: with 120 watchers of one busy
/// workflow that was 53,000 queries for 4,500 events, and the queries took the database pool from
/// dispatch — the workflow took 85 s instead of 6 (found by black-box testing). Now one read
/// (`refresh`) brings what was appended since the last one into a window of recent events, and a
/// watcher whose cursor lies inside the window takes its events from there, filtered as the
/// store filters them; a watcher behind the window (catching up) reads the store as before, and
/// joins the window once it has caught up.
///
/// The window holds every event with a sequence in (`coveredAfter`, `last`]: it starts at the
/// log's end when first asked, grows by reads of everything after `last` (the log hands out
/// sequences in commit order, migration 0006, so such a read misses nothing that a later one
/// could still find), and drops its oldest events past `maxEvents` or `maxBytes`.
actor EventTail {
    /// Set once the store said it cannot tell where its log ends: watchers then read the store
    /// without asking the tail (no hop to this actor).
    nonisolated let unsupported = Atomic<Bool>(false)

    private let events: any EventStore
    private let signals: ChangeSignals
    private let maxEvents: Int
    private let maxBytes: Int
    /// A read older than this is repeated even without a signal (the watchers' safety net for a
    /// lost NOTIFY reads the log again, as it did before).
    private let maxStaleness: Duration

    private var window: [StoredEvent] = []
    /// Index of the oldest live event in `window` (dropped ones are compacted away in bulk).
    private var head = 0
    private var bytes = 0
    private var coveredAfter: Int64?
    private var last: Int64 = 0
    /// The signal generation read before the last completed refresh began, and when it began.
    private var refreshedGeneration: UInt64?
    private var refreshedAt: ContinuousClock.Instant?
    private var refreshing: Task<Void, any Error>?

    init(events: any EventStore, signals: ChangeSignals, maxEvents: Int = 20_000, maxBytes: Int = 32 << 20, maxStaleness: Duration = .seconds(1)) {
        self.events = events
        self.signals = signals
        self.maxEvents = maxEvents
        self.maxBytes = maxBytes
        self.maxStaleness = maxStaleness
    }

    /// The events `query` asks for, when the window covers its cursor (after a refresh that began
    /// once `generation` was current), and the sequence the window was searched through: a
    /// watcher of one workflow starts its next search there instead of at its last event, past
    /// the other workflows' events (rescanned at every change, a quiet workflow's watcher walked
    /// the whole window each time). nil when the watcher must read the store (its cursor is older
    /// than the window, or the store cannot say where its log ends).
    func batch(_ query: EventQuery, generation: UInt64) async throws -> (events: [StoredEvent], searchedThrough: Int64)? {
        try await refresh(covering: generation)
        guard let coveredAfter, query.afterSequence >= coveredAfter else { return nil }
        var found: [StoredEvent] = []
        var index = firstIndex(after: query.afterSequence)
        while index < window.count, found.count < query.limit {
            let event = window[index]
            if Self.matches(event, query) { found.append(event) }
            index += 1
        }
        let searched = found.count == query.limit ? found[found.count - 1].sequence : last
        return (found, max(query.afterSequence, searched))
    }

    /// As the store's query filters: one workflow, one tenant (byte for byte, as PostgreSQL compares).
    static func matches(_ event: StoredEvent, _ query: EventQuery) -> Bool {
        if let workflowID = query.workflowID, !event.workflowID.hasSameBytes(as: workflowID) { return false }
        if let tenant = query.tenant, !event.tenant.hasSameBytes(as: tenant) { return false }
        return true
    }

    private func firstIndex(after sequence: Int64) -> Int {
        var low = head
        var high = window.count
        while low < high {
            let middle = (low + high) / 2
            if window[middle].sequence <= sequence { low = middle + 1 } else { high = middle }
        }
        return low
    }

    /// Reads what was appended since the last read, unless a read that began at `generation` or
    /// later (and within `maxStaleness`) already did; one read at a time, shared by its waiters.
    private func refresh(covering generation: UInt64) async throws {
        while true {
            if let refreshedGeneration, refreshedGeneration >= generation, let refreshedAt,
                ContinuousClock.now - refreshedAt < maxStaleness
            {
                return
            }
            if let refreshing {
                try await refreshing.value
                continue
            }
            let task = Task { try await self.readNewEvents(generation: signals.generation(.events), at: .now) }
            refreshing = task
            try await task.value
            return
        }
    }

    /// One refresh; its state is settled here, before any waiter of it resumes.
    private func readNewEvents(generation: UInt64, at start: ContinuousClock.Instant) async throws {
        defer { refreshing = nil }
        try await readNewEvents()
        refreshedGeneration = generation
        refreshedAt = start
    }

    private func readNewEvents() async throws {
        guard coveredAfter != nil else {
            guard let end = try await events.latestSequence() else {
                unsupported.store(true, ordering: .relaxed)
                return
            }
            coveredAfter = end
            last = end
            return
        }
        while true {
            let page = try await events.events(EventQuery(afterSequence: last, limit: 1000))
            for event in page { append(event) }
            if page.count < 1000 { return }
        }
    }

    private func append(_ event: StoredEvent) {
        window.append(event)
        last = event.sequence
        bytes += Self.size(of: event)
        while window.count - head > maxEvents || bytes > maxBytes, head < window.count - 1 {
            bytes -= Self.size(of: window[head])
            coveredAfter = window[head].sequence
            head += 1
        }
        if head > 4096, head * 2 > window.count {
            window.removeFirst(head)
            head = 0
        }
    }

    /// An estimate: the variable-length fields and a fixed part.
    private static func size(of event: StoredEvent) -> Int {
        256 + event.message.utf8.count + event.workflowID.utf8.count + (event.taskKey?.utf8.count ?? 0)
            + (event.executorID?.utf8.count ?? 0) + event.traceID.utf8.count
    }
}
