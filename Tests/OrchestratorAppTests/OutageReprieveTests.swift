import OrchestratorDomain
import Synchronization
import Testing

@testable import OrchestratorApp

/// A store whose database can be taken away: every call fails `.unavailable` while `down`; records
/// the cut-off of each reaper sweep it answered.
final class OutageStore: TaskDispatchStore {
    let down = Atomic<Bool>(false)
    /// Reaper sweeps refused while `down`.
    let refusedSweeps = Atomic<Int>(0)
    /// (now, expiredBefore) of each sweep that reached the database.
    let sweeps = Mutex<[(now: UnixMillis, expiredBefore: UnixMillis)]>([])

    private func database() throws {
        if down.load(ordering: .acquiring) { throw StoreError.unavailable("connection refused") }
    }

    func claimTasks(_ request: ClaimRequest) async throws -> [ClaimedTask] { try database(); return [] }
    func report(_ report: TaskReport) async throws -> ReportResult { try database(); return .unknownTask }
    func extendLeases(_ extensions: [LeaseExtension]) async throws -> [LeaseState] { try database(); return [] }
    func resumeLeases(_ extensions: [LeaseExtension], sessionID: String, now: UnixMillis)
        async throws -> [LeaseState] { try database(); return [] }
    func releaseLeases(_ leases: [LeaseToken], executorID: String, sessionID: String?, reason: String, now: UnixMillis)
        async throws -> [ExpiredLease] {
        try database()
        return []
    }
    func expireLeases(now: UnixMillis, limit: Int) async throws -> [ExpiredLease] {
        try await expireLeases(now: now, expiredBefore: now, limit: limit)
    }
    /// The next sweep hangs this long, then succeeds: a partition, as a blackholed connection
    /// that is cut and replaced shows it (nothing fails).
    let hangNextSweepMillis = Atomic<Int>(0)

    /// While `down`, each sweep waits this long before it fails: the pool retrying its connection.
    let failSlowlyMillis = Atomic<Int>(0)

    func expireLeases(now: UnixMillis, expiredBefore: UnixMillis, limit: Int) async throws -> [ExpiredLease] {
        if down.load(ordering: .acquiring) {
            let wait = failSlowlyMillis.load(ordering: .acquiring)
            if wait > 0 { try? await Task.sleep(for: .milliseconds(wait)) }
            refusedSweeps.add(1, ordering: .relaxed)
        }
        try database()
        sweeps.withLock { $0.append((now, expiredBefore)) }
        let hang = hangNextSweepMillis.exchange(0, ordering: .acquiringAndReleasing)
        if hang > 0 { try? await Task.sleep(for: .milliseconds(hang)) }
        return []
    }
}

/// Found by black-box testing: with PostgreSQL stopped for longer than the lease TTL, no keeper
/// could extend leases, and the reaper expired every live executor's lease the moment the
/// database came back (0.7 s after), so every task in flight ran a second time although its
/// executor had heartbeated throughout.
@Suite("The reaper after a database outage")
struct OutageReprieveTests {
    @Test func leasesThatRanOutDuringTheOutageAreSparedForTheReprieveThenReapedAsUsual() async throws {
        let store = OutageStore()
        let dispatch = Self.dispatch(store)  // reprieve: 1 s + 2 × 10 ms
        let loops = dispatch.runBackgroundLoops()
        defer { loops.cancel() }

        // Healthy: every sweep reaps up to now.
        try await waitUntil { store.sweeps.withLock { $0.count } >= 3 }
        #expect(store.sweeps.withLock { $0 }.allSatisfy { $0.expiredBefore == $0.now })

        let outageBegan = SystemWallClock().now()
        store.down.store(true, ordering: .releasing)
        try await waitUntil { store.refusedSweeps.load(ordering: .relaxed) >= 2 }
        let beforeOutage = store.sweeps.withLock { $0.count }
        store.down.store(false, ordering: .releasing)
        let back = ContinuousClock.now

        // The first sweep after it (and each one for the reprieve, which starts then) reaps only
        // what expired before the outage: before the database last answered a sweep.
        try await waitUntil { store.sweeps.withLock { $0.count } > beforeOutage }
        let first = store.sweeps.withLock { $0[beforeOutage] }
        let lastHealthy = store.sweeps.withLock { $0[beforeOutage - 1] }
        #expect(first.expiredBefore >= lastHealthy.now && first.expiredBefore <= outageBegan && first.expiredBefore < first.now, "\(first)")

        // Then up to now again, no sooner than the reprieve after the database came back.
        try await waitUntil { store.sweeps.withLock { $0.last.map { $0.expiredBefore == $0.now } ?? false } }
        #expect(ContinuousClock.now - back >= dispatch.outageReprieve)
        let after = store.sweeps.withLock { Array($0[beforeOutage...]) }
        let spared = after.prefix { $0.expiredBefore != $0.now }
        #expect(spared.allSatisfy { $0.expiredBefore == first.expiredBefore })
        #expect(after.dropFirst(spared.count).allSatisfy { $0.expiredBefore == $0.now })
    }

    /// Dispatch over `store` with a reaper and keeper every 10 ms and a 1 s heartbeat interval.
    static func dispatch(_ store: OutageStore, slowSweep: Duration? = nil) -> DispatchService {
        var configuration = DispatchConfiguration()
        configuration.reaperInterval = .milliseconds(10)
        configuration.keeperInterval = .milliseconds(10)
        configuration.heartbeatInterval = .seconds(1)
        if let slowSweep { configuration.slowSweep = slowSweep }
        return DispatchService(store: store, signals: ChangeSignals(), configuration: configuration)
    }

    /// Polls `condition` (the reaper runs on its own clock); gives up loudly after 30 s.
    func waitUntil(_ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(30)
        while !condition() {
            guard ContinuousClock.now < deadline else {
                Issue.record("condition not met in 30 s")
                return
            }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    /// Found by black-box testing: a sweep meeting the outage fails only once its connection
    /// retries give up (14 s and more), and the outage was dated from that failure; the leases
    /// that ran out in between were reaped the moment the database was back.
    @Test func anOutageBeginsWhenTheDatabaseLastAnsweredNotWhenASweepGaveUp() async throws {
        let store = OutageStore()
        store.failSlowlyMillis.store(500, ordering: .releasing)
        let dispatch = Self.dispatch(store)
        let loops = dispatch.runBackgroundLoops()
        defer { loops.cancel() }
        try await waitUntil { store.sweeps.withLock { $0.count } >= 3 }
        let outageBegan = SystemWallClock().now()
        store.down.store(true, ordering: .releasing)
        try await waitUntil { store.refusedSweeps.load(ordering: .relaxed) >= 2 }
        let beforeOutage = store.sweeps.withLock { $0.count }
        store.down.store(false, ordering: .releasing)
        try await waitUntil { store.sweeps.withLock { $0.count } > beforeOutage }
        let first = store.sweeps.withLock { $0[beforeOutage] }
        // Not the failure's time, half a second and more after the database went away.
        #expect(first.expiredBefore <= outageBegan, "outage dated \(first.expiredBefore - outageBegan) ms after it began")
    }

    /// Found by the outage system test in CI: a blackholed database makes statements hang and
    /// then succeed on a new connection, so no sweep failed and the reaper never knew.
    @Test func aSweepThatHungCountsAsAnOutageThatBeganWhenItStarted() async throws {
        let store = OutageStore()
        let dispatch = Self.dispatch(store, slowSweep: .milliseconds(200))
        let loops = dispatch.runBackgroundLoops()
        defer { loops.cancel() }
        try await waitUntil { store.sweeps.withLock { $0.count } >= 2 }
        store.hangNextSweepMillis.store(600, ordering: .releasing)
        try await waitUntil { store.hangNextSweepMillis.load(ordering: .acquiring) == 0 }
        let hung = store.sweeps.withLock { $0.count } - 1
        try await waitUntil { store.sweeps.withLock { $0.count } > hung + 1 }
        let sweeps = store.sweeps.withLock { $0 }
        let next = sweeps[hung + 1]
        #expect(next.expiredBefore <= sweeps[hung].now && next.expiredBefore < next.now, "\(sweeps[hung]) then \(next)")
    }
}
