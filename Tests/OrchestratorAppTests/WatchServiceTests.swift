import OrchestratorApp
import Synchronization
import Testing

@Suite struct WatchServiceTests {
    @Test func deliversPastThenLiveEventsInOrderOnce() async throws {
        let store = FakeEventStore()
        let signals = ChangeSignals()
        store.commit([1, 2, 3])
        let watch = WatchService(events: store, signals: signals, batchSize: 2, gapGrace: .milliseconds(100))
        let seen = Collected()
        let follower = Task {
            try await watch.follow(EventQuery(afterSequence: 1), stopWhen: { $0.sequence == 6 }, emit: { seen.append($0.sequence) })
        }
        try await Task.sleep(for: .milliseconds(50))
        store.commit([4, 5, 6])
        signals.signal(.events)
        try await follower.value
        #expect(seen.values == [2, 3, 4, 5, 6])
    }

    @Test func waitsForALateCommitInsteadOfSkippingIt() async throws {
        let store = FakeEventStore()
        let signals = ChangeSignals()
        store.commit([1, 3])  // 2 is still committing
        // A long grace: in a full parallel `swift test` on two cores the watcher's task may wait
        // seconds for a thread (other suites block theirs in synchronous libpq calls).
        let watch = WatchService(events: store, signals: signals, gapGrace: .seconds(60))
        let seen = Collected()
        let follower = Task {
            try await watch.follow(EventQuery(afterSequence: 0), stopWhen: { $0.sequence == 3 }, emit: { seen.append($0.sequence) })
        }
        // Within the grace: 1 is delivered, and 3 waits for 2.
        try await waitUntil(.seconds(30)) { seen.values == [1] }
        try await Task.sleep(for: .milliseconds(100))
        #expect(seen.values == [1])
        store.commit([2])
        signals.signal(.events)
        try await follower.value
        #expect(seen.values == [1, 2, 3])
    }

    /// Where sequences become visible in order, every hole is permanent: a relay replaying a range
    /// that retention thinned out waited the grace at each surviving event.
    @Test func aStoreWhoseSequencesBecomeVisibleInOrderNeverWaitsOnAHole() async throws {
        let store = FakeEventStore(sequencesBecomeVisibleInOrder: true)
        store.commit([1, 5, 9, 200])
        let watch = WatchService(events: store, signals: ChangeSignals(), gapGrace: .seconds(60))
        let seen = Collected()
        let started = ContinuousClock.now
        try await watch.follow(EventQuery(afterSequence: 0), stopWhen: { $0.sequence == 200 }, emit: { seen.append($0.sequence) })
        #expect(seen.values == [1, 5, 9, 200])
        #expect(ContinuousClock.now - started < .seconds(30))
    }

    @Test func skipsAPermanentGapAfterTheGrace() async throws {
        let store = FakeEventStore()
        let signals = ChangeSignals()
        store.commit([1, 3])  // 2 was rolled back and never appears
        let watch = WatchService(events: store, signals: signals, gapGrace: .milliseconds(100))
        let seen = Collected()
        try await watch.follow(EventQuery(afterSequence: 0), stopWhen: { $0.sequence == 3 }, emit: { seen.append($0.sequence) })
        #expect(seen.values == [1, 3])
    }

    @Test func aFilteredWatchDoesNotWaitOnOtherWorkflowsSequences() async throws {
        let store = FakeEventStore()
        store.commit([1], workflowID: "a")
        store.commit([5], workflowID: "a")
        let watch = WatchService(events: store, signals: ChangeSignals(), gapGrace: .seconds(30))
        let seen = Collected()
        let started = ContinuousClock.now
        try await watch.follow(EventQuery(afterSequence: 0, workflowID: "a"), stopWhen: { $0.sequence == 5 }, emit: { seen.append($0.sequence) })
        #expect(seen.values == [1, 5])
        #expect(ContinuousClock.now - started < .seconds(10))
    }

    /// A resume point past every event of a running workflow waited for a final event it was past
    /// (found by black-box testing): once the workflow finished, the watch ends with nothing sent.
    @Test func aCursorPastEveryEventEndsWhenTheWorkflowFinishes() async throws {
        let store = FakeEventStore()
        store.commit([1, 2], workflowID: "a")
        let watch = WatchService(events: store, signals: ChangeSignals(), idleRecheck: .milliseconds(10))
        let seen = Collected()
        let checks = Atomic<Int>(0)
        try await watch.follow(
            EventQuery(afterSequence: 1_000, workflowID: "a"), stopWhen: { $0.sequence == 2 },
            finishedMeanwhile: { checks.add(1, ordering: .relaxed).newValue >= 3 }, emit: { seen.append($0.sequence) })
        #expect(seen.values.isEmpty)
        #expect(checks.load(ordering: .relaxed) == 3)
    }

    /// The workflow finished between the read that found nothing and the check: its final event,
    /// after a valid cursor, is still delivered (one more read) before the watch ends.
    @Test func aFinalEventCommittedWithTheCheckIsStillDelivered() async throws {
        let store = FakeEventStore()
        store.commit([1, 2], workflowID: "a")
        let watch = WatchService(events: store, signals: ChangeSignals(), idleRecheck: .milliseconds(10))
        let seen = Collected()
        try await watch.follow(
            EventQuery(afterSequence: 2, workflowID: "a"), stopWhen: { $0.sequence == 3 },
            finishedMeanwhile: {
                store.commit([3], workflowID: "a")
                return true
            }, emit: { seen.append($0.sequence) })
        #expect(seen.values == [3])
    }

    /// A watch that nothing ends (no final event to stop at) is asked once per idle period whether
    /// its workflow is gone, even while other workflows' events keep waking it, and ends with the
    /// error `gone` throws: a workflow deleted by retention left such watches open for ever (found
    /// by black-box testing).
    @Test func aWatchWhoseWorkflowIsGoneEndsWithTheErrorGoneThrows() async throws {
        struct Deleted: Error {}
        let store = FakeEventStore()
        store.commit([1, 2], workflowID: "a")
        let signals = ChangeSignals()
        let watch = WatchService(events: store, signals: signals, idleRecheck: .milliseconds(50))
        let seen = Collected()
        let checks = Atomic<Int>(0)
        let noise = Task {
            // Another workflow's events, faster than the idle period.
            for sequence in Int64(3)... {
                try await Task.sleep(for: .milliseconds(10))
                store.commit([sequence], workflowID: "b")
                signals.signal(.events)
            }
        }
        defer { noise.cancel() }
        await #expect(throws: Deleted.self) {
            try await watch.follow(
                EventQuery(afterSequence: 0, workflowID: "a"),
                gone: { if checks.add(1, ordering: .relaxed).newValue == 3 { throw Deleted() } },
                emit: { seen.append($0.sequence) })
        }
        #expect(seen.values == [1, 2])
        #expect(checks.load(ordering: .relaxed) == 3)
    }

    /// A watch whose database went away ended with the generic "temporarily unavailable", so the
    /// watcher could not tell where to resume (found by black-box testing): it now says after
    /// which event.
    @Test func aDatabaseOutageEndsTheWatchNamingTheLastEventSent() async throws {
        let store = OutageAfterFirstBatch()
        let watch = WatchService(events: store, signals: ChangeSignals(), batchSize: 2, idleRecheck: .milliseconds(10))
        let seen = Collected()
        await #expect(throws: WatchStorageUnavailable.self) {
            try await watch.follow(EventQuery(afterSequence: 0), emit: { seen.append($0.sequence) })
        }
        #expect(seen.values == [1, 2])
        do {
            try await watch.follow(EventQuery(afterSequence: 2), emit: { seen.append($0.sequence) })
        } catch let error as WatchStorageUnavailable {
            #expect(error.lastSequence == 2 && error.reason == "connection refused")
        }
    }
}

/// Answers events 1 and 2, then fails as an unreachable database does.
final class OutageAfterFirstBatch: EventStore {
    private let answered = Mutex(false)

    func events(_ query: EventQuery) async throws -> [StoredEvent] {
        if answered.withLock({ value in defer { value = true }; return value }) {
            throw StoreError.unavailable("connection refused")
        }
        return [1, 2].map { StoredEvent(sequence: $0, workflowID: "wf", tenant: "t", kind: .taskReady, at: $0, traceID: "trace") }
    }
}
