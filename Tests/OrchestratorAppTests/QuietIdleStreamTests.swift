import OrchestratorDomain
import Synchronization
import Testing

@testable import OrchestratorApp

/// A stream that sends nothing for the longer of a lease TTL and two heartbeat intervals is
/// closed, idle or not, and is handed nothing meanwhile. Found by black-box testing: a wedged
/// executor holding no lease stayed "idle" and was handed task after task by direct dispatch and
/// claims, each lapsing a TTL later, until their attempts ran out.
@Suite("Quiet idle streams")
struct QuietIdleStreamTests {
    static func dispatch(_ store: EmptyQueueStore, clock: ManualWallClock) -> DispatchService {
        var configuration = DispatchConfiguration()
        configuration.leaseTTL = .seconds(6)
        configuration.heartbeatInterval = .seconds(2)
        configuration.idleRecheck = .milliseconds(20)
        return DispatchService(store: store, signals: ChangeSignals(), configuration: configuration, clock: clock)
    }

    @Test func aQuietIdleStreamIsOfferedNothingAndClosed() async throws {
        let store = EmptyQueueStore()
        let clock = ManualWallClock()
        let dispatch = Self.dispatch(store, clock: clock)
        let quiet = TestSession(dispatch, ExecutorIdentity(executorID: "quiet", capabilities: [], maxInFlight: 2))
        #expect(await eventually { quiet.welcomed && store.claims.withLock { $0 } >= 1 })
        let dag = Dag(tasks: [TaskSpec(key: "a")])
        let reservation = try #require(dispatch.reserveIdle(for: dag, tenant: "acme", priority: 0, ranks: [:]))
        dispatch.cancel(reservation)

        clock.advance(5_999)
        #expect(dispatch.reserveIdle(for: dag, tenant: "acme", priority: 0, ranks: [:]).map { dispatch.cancel($0); return true } == true)
        clock.advance(1)  // six seconds (the TTL; longer than two 2 s intervals) without a word
        #expect(dispatch.reserveIdle(for: dag, tenant: "acme", priority: 0, ranks: [:]) == nil)
        #expect(await eventually { dispatch.sessionCount == 0 })
        await quiet.end()
    }

    @Test func aStreamThatHeartbeatsWhileIdleStaysOpenAndServed() async throws {
        let store = EmptyQueueStore()
        let clock = ManualWallClock()
        let dispatch = Self.dispatch(store, clock: clock)
        let alive = TestSession(dispatch, ExecutorIdentity(executorID: "alive", capabilities: [], maxInFlight: 2))
        #expect(await eventually { alive.welcomed })
        for _ in 0..<5 {
            clock.advance(2_000)
            let acks = alive.sent.withLock { $0.count }
            alive.input.yield(.heartbeat([]))
            #expect(await eventually { alive.sent.withLock { $0.count } > acks })
        }
        try await Task.sleep(for: .milliseconds(100))
        #expect(dispatch.sessionCount == 1)
        let reservation = try #require(dispatch.reserveIdle(for: Dag(tasks: [TaskSpec(key: "a")]), tenant: "acme", priority: 0, ranks: [:]))
        dispatch.cancel(reservation)
        await alive.end()
    }
}

/// A report that frees a stream's slot tells the session, which then claims from the queue
/// before direct dispatch may fill the slot (as after a revocation). Found by black-box testing:
/// after a failure report, a newer workflow's task went to the freed slot ahead of an older,
/// higher-priority ready task.
@Suite("Slots freed by reports")
struct SlotFreedByReportTests {
    @Test func removingAReportedLeaseTellsItsSessionOnly() {
        let registry = LeaseRegistry()
        let freed = Mutex<[String]>([])
        for id in ["s1", "s2"] {
            var handle = LeaseRegistry.SessionHandle(revoke: { _, _ in })
            handle.slotFreed = { freed.withLock { $0.append(id) } }
            registry.registerSession(id, handle: handle, openedAt: 0)
        }
        let lease = LeaseToken(taskID: "t", fencingToken: 1)
        registry.add([.init(token: lease, executorID: "e", sessionID: "s1", ttlMillis: 6_000, lastHeartbeat: 0, databaseExpiry: 6_000)])
        registry.removeReported(lease)
        #expect(freed.withLock { $0 } == ["s1"])
        #expect(registry.count(session: "s1") == 0)
        // A lease no longer held frees nothing.
        registry.removeReported(lease)
        #expect(freed.withLock { $0 } == ["s1"])
    }
}
