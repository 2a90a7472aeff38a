import OrchestratorApp
import Synchronization
import Testing

/// Caught-up watchers share one read of each change (`EventTail`): found by black-box testing,
/// 120 watchers of one workflow made 53,000 queries for 4,500 events and slowed dispatch 14-fold.
@Suite struct EventTailTests {
    /// A log that ends where its events end and counts the reads of events.
    final class CountingEventStore: EventStore {
        private let committed = Mutex<[StoredEvent]>([])
        private let reads = Atomic<Int>(0)
        private let ends = Atomic<Int>(0)
        private let failing = Atomic<Bool>(false)

        var eventReads: Int { reads.load(ordering: .relaxed) }
        /// Calls of `latestSequence`: the window starts at the log's end with the first.
        var endReads: Int { ends.load(ordering: .relaxed) }
        func fail(_ on: Bool) { failing.store(on, ordering: .relaxed) }

        func commit(_ sequences: ClosedRange<Int64>, workflowID: String = "wf", tenant: String = "t") {
            committed.withLock { events in
                for sequence in sequences {
                    events.append(StoredEvent(sequence: sequence, workflowID: workflowID, tenant: tenant, kind: .taskReady, at: sequence, traceID: "trace"))
                }
            }
        }

        func events(_ query: EventQuery) async throws -> [StoredEvent] {
            if failing.load(ordering: .relaxed) { throw StoreError.unavailable("connection refused") }
            reads.add(1, ordering: .relaxed)
            return committed.withLock { events in
                Array(events.filter {
                    $0.sequence > query.afterSequence && (query.workflowID == nil || $0.workflowID == query.workflowID)
                        && (query.tenant == nil || $0.tenant == query.tenant)
                }.prefix(query.limit))
            }
        }

        func latestSequence() async throws -> Int64? {
            if failing.load(ordering: .relaxed) { throw StoreError.unavailable("connection refused") }
            ends.add(1, ordering: .relaxed)
            return committed.withLock { $0.last?.sequence ?? 0 }
        }
    }

    @Test("fifty watchers of one workflow get every event in order, from a handful of reads")
    func watchersShareReads() async throws {
        let store = CountingEventStore()
        store.commit(1...10)
        let signals = ChangeSignals()
        let watch = WatchService(events: store, signals: signals, idleRecheck: .seconds(60))
        let watchers = (0..<50).map { _ in Collected() }
        let followers = watchers.map { seen in
            Task {
                try await watch.follow(EventQuery(afterSequence: 10, workflowID: "wf"), stopWhen: { $0.sequence == 210 }, emit: { seen.append($0.sequence) })
            }
        }
        // The window starts at the log's end (10) before anything more is committed, so every
        // watcher's cursor lies inside it, however late its task starts.
        try await waitUntil { store.endReads > 0 }
        let before = store.eventReads
        for round in 0..<20 {
            let first = Int64(11 + round * 10)
            store.commit(first...(first + 9))
            signals.signal(.events)
            try await Task.sleep(for: .milliseconds(10))
        }
        for follower in followers { try await follower.value }
        for seen in watchers { #expect(seen.values == Array(11...210)) }
        // One read per change and a final one at most, however many watchers: 50 watchers reading
        // for themselves made at least 1,000.
        #expect(store.eventReads - before <= 40, "\(store.eventReads - before) reads")
    }

    @Test("watchers see only their workflow's and their tenant's events from the shared window")
    func windowFiltersAsTheStore() async throws {
        let store = CountingEventStore()
        let signals = ChangeSignals()
        let watch = WatchService(events: store, signals: signals, idleRecheck: .seconds(60))
        let ofA = Collected()
        let ofTenant = Collected()
        let a = Task { try await watch.follow(EventQuery(afterSequence: 0, workflowID: "a"), stopWhen: { $0.sequence == 6 }, emit: { ofA.append($0.sequence) }) }
        let tenant = Task {
            try await watch.follow(EventQuery(afterSequence: 0, tenant: "kraft"), stopWhen: { $0.sequence == 5 }, emit: { ofTenant.append($0.sequence) })
        }
        try await Task.sleep(for: .milliseconds(100))
        store.commit(1...2, workflowID: "a", tenant: "acme")
        store.commit(3...3, workflowID: "b", tenant: "kraft")
        // The same tenant spelled with a KELVIN SIGN: another tenant, as PostgreSQL compares.
        store.commit(4...4, workflowID: "c", tenant: "\u{212A}raft")
        store.commit(5...5, workflowID: "b", tenant: "kraft")
        store.commit(6...6, workflowID: "a", tenant: "acme")
        signals.signal(.events)
        try await a.value
        try await tenant.value
        #expect(ofA.values == [1, 2, 6])
        #expect(ofTenant.values == [3, 5])
    }

    @Test("a watcher of a quiet workflow searches on from where it stopped, and still gets its events")
    func quietWorkflowWatcherSkipsOthers() async throws {
        let store = CountingEventStore()
        let signals = ChangeSignals()
        let watch = WatchService(events: store, signals: signals, idleRecheck: .seconds(60))
        let seen = Collected()
        let follower = Task {
            try await watch.follow(EventQuery(afterSequence: 0, workflowID: "quiet"), stopWhen: { $0.sequence == 1_002 }, emit: { seen.append($0.sequence) })
        }
        try await waitUntil { store.endReads > 0 }
        for round in 0..<10 {
            let first = Int64(1 + round * 100)
            store.commit(first...(first + 99), workflowID: "busy")
            signals.signal(.events)
            try await Task.sleep(for: .milliseconds(5))
        }
        store.commit(1_001...1_001, workflowID: "quiet")
        store.commit(1_002...1_002, workflowID: "quiet")
        signals.signal(.events)
        try await follower.value
        #expect(seen.values == [1_001, 1_002])
    }

    @Test("a watcher older than the window reads the store, then joins the window, missing nothing")
    func watcherBehindTheWindowCatchesUp() async throws {
        let store = CountingEventStore()
        let signals = ChangeSignals()
        let watch = WatchService(events: store, signals: signals, batchSize: 7, idleRecheck: .seconds(60), recentEvents: 10)
        let live = Collected()
        let follower = Task { try await watch.follow(EventQuery(afterSequence: 0), stopWhen: { $0.sequence == 300 }, emit: { live.append($0.sequence) }) }
        try await Task.sleep(for: .milliseconds(100))
        for round in 0..<30 {
            let first = Int64(1 + round * 10)
            store.commit(first...(first + 9))
            signals.signal(.events)
            try await Task.sleep(for: .milliseconds(5))
        }
        try await follower.value
        #expect(live.values == Array(1...300))
        // From the start, long after the window moved past it.
        let late = Collected()
        try await watch.follow(EventQuery(afterSequence: 0), stopWhen: { $0.sequence == 300 }, emit: { late.append($0.sequence) })
        #expect(late.values == Array(1...300))
    }

    @Test("a database outage during the shared read ends the watch with where to resume")
    func outageEndsTheWatch() async throws {
        let store = CountingEventStore()
        store.commit(1...3)
        let signals = ChangeSignals()
        let watch = WatchService(events: store, signals: signals, idleRecheck: .seconds(60))
        let seen = Collected()
        let follower = Task {
            try await watch.follow(EventQuery(afterSequence: 3), emit: { seen.append($0.sequence) })
        }
        try await Task.sleep(for: .milliseconds(100))
        store.commit(4...5)
        signals.signal(.events)
        try await waitUntil { seen.values == [4, 5] }
        store.fail(true)
        signals.signal(.events)
        do {
            try await follower.value
            Issue.record("the watch went on without its database")
        } catch let error as WatchStorageUnavailable {
            #expect(error.lastSequence == 5)
        }
        #expect(seen.values == [4, 5])
    }
}
