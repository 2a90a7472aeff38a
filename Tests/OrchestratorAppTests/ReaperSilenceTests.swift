@testable import OrchestratorApp
import OrchestratorDomain
import Synchronization
import Testing

/// A lease the reaper expires tells its session it went silent when the session has not
/// heartbeated for the lease's TTL. Found by black-box testing: when the reaper got there before
/// the keeper noticed the silence (revocation "lease expired" instead of "lease lapsed"), the
/// silent stream stayed open and was handed the requeued work, which lapsed in turn until its
/// attempts ran out.
@Suite("Reaper and silent sessions")
struct ReaperSilenceTests {
    @Test func anExpiredLeaseOfASilentSessionMarksItSilentAndOfALiveOneDoesNot() {
        let registry = LeaseRegistry()
        let silentCalls = Mutex<[String]>([])
        let revoked = Mutex<[String]>([])
        let now: UnixMillis = 100_000
        for id in ["quiet", "alive"] {
            registry.registerSession(id, handle: .init(
                revoke: { token, reason in revoked.withLock { $0.append("\(token.taskID): \(reason)") } },
                heartbeatsStopped: { silentCalls.withLock { $0.append(id) } }), openedAt: now - 10_000)
        }
        let quiet = LeaseToken(taskID: "t-quiet", fencingToken: 1)
        let alive = LeaseToken(taskID: "t-alive", fencingToken: 1)
        registry.add([
            .init(token: quiet, executorID: "e1", sessionID: "quiet", ttlMillis: 6_000, lastHeartbeat: now - 6_000, databaseExpiry: now),
            .init(token: alive, executorID: "e2", sessionID: "alive", ttlMillis: 6_000, lastHeartbeat: now - 6_000, databaseExpiry: now),
        ])
        // The live stream heartbeats (naming nothing else) after its lease's expiry was last stored.
        _ = registry.heartbeat(session: "alive", tokens: [LeaseToken(taskID: "t-elsewhere", fencingToken: 1)], now: now - 500)

        registry.revokeExpired(quiet, reason: "lease expired", now: now, heartbeatIntervalMillis: 2_000)
        registry.revokeExpired(alive, reason: "lease expired", now: now, heartbeatIntervalMillis: 2_000)

        #expect(silentCalls.withLock { $0 } == ["quiet"])
        #expect(revoked.withLock { $0 }.sorted() == ["t-alive: lease expired", "t-quiet: lease expired"])
        #expect(registry.totalLeases == 0)
    }

    /// A task whose own TTL (1 s) is shorter than the heartbeat interval (2 s) lapses between
    /// the heartbeats of a healthy stream: revoked alone, the stream goes on (EXECUTORS.md step
    /// 2). Found by black-box testing: the stream was closed and its other leases given back.
    @Test func aShortTTLLapseBetweenHeartbeatsDoesNotSilenceTheSession() {
        let registry = LeaseRegistry()
        let silentCalls = Mutex<Int>(0)
        let now: UnixMillis = 100_000
        registry.registerSession(
            "s", handle: .init(revoke: { _, _ in }, heartbeatsStopped: { silentCalls.withLock { $0 += 1 } }), openedAt: now - 10_000)
        let short = LeaseToken(taskID: "t-short", fencingToken: 1)
        registry.add([.init(token: short, executorID: "e", sessionID: "s", ttlMillis: 1_000, lastHeartbeat: now - 1_800, databaseExpiry: now)])
        _ = registry.heartbeat(session: "s", tokens: [], now: now - 1_500)
        registry.lapseOrRevoke(short, reason: "lease lapsed", now: now, heartbeatIntervalMillis: 2_000)
        #expect(silentCalls.withLock { $0 } == 0)
        #expect(registry.totalLeases == 0)
        // Quiet for two intervals: stopped.
        let other = LeaseToken(taskID: "t-other", fencingToken: 1)
        let later = now + 2_500
        registry.add([.init(token: other, executorID: "e", sessionID: "s", ttlMillis: 1_000, lastHeartbeat: later - 1_200, databaseExpiry: later)])
        registry.lapseOrRevoke(other, reason: "lease lapsed", now: later, heartbeatIntervalMillis: 2_000)
        #expect(silentCalls.withLock { $0 } == 1)
    }

    /// A stream that never heartbeated is silent one TTL after it opened, whenever its lease was
    /// handed over. The database's expiry runs from the claim, the hand-over a little later;
    /// counting the hand-over as a sign of life, a reaper that expired the lease in between
    /// judged the stream alive, and it stayed open holding nothing, never told why (seen in CI).
    @Test func aStreamThatNeverHeartbeatedIsSilentWhenItsLeaseExpiresBeforeOneTTLAfterTheHandOver() {
        let registry = LeaseRegistry()
        let silentCalls = Mutex<Int>(0)
        let opened: UnixMillis = 100_000
        registry.registerSession(
            "s", handle: .init(revoke: { _, _ in }, heartbeatsStopped: { silentCalls.withLock { $0 += 1 } }), openedAt: opened)
        let claimedAt = opened + 20, handedOver = opened + 80
        let lease = LeaseToken(taskID: "t", fencingToken: 1)
        registry.add([.init(token: lease, executorID: "e", sessionID: "s", ttlMillis: 3_000, lastHeartbeat: handedOver, databaseExpiry: claimedAt + 3_000)])
        registry.revokeExpired(lease, reason: "lease expired", now: claimedAt + 3_010, heartbeatIntervalMillis: 1_000)
        #expect(silentCalls.withLock { $0 } == 1)
        #expect(registry.totalLeases == 0)
    }

    /// A lease heartbeated by a unary call while its stream stays quiet: the executor is alive.
    @Test func aUnaryHeartbeatOfTheLeaseKeepsTheStreamFromBeingJudgedSilent() {
        let registry = LeaseRegistry()
        let silentCalls = Mutex<Int>(0)
        let now: UnixMillis = 100_000
        registry.registerSession(
            "s", handle: .init(revoke: { _, _ in }, heartbeatsStopped: { silentCalls.withLock { $0 += 1 } }), openedAt: now - 10_000)
        let lease = LeaseToken(taskID: "t", fencingToken: 1)
        registry.add([.init(token: lease, executorID: "e", sessionID: "s", ttlMillis: 3_000, lastHeartbeat: now - 9_000, databaseExpiry: now)])
        registry.heartbeat(executorID: "e", tokens: [lease], now: now - 1_000)
        registry.revokeExpired(lease, reason: "lease expired", now: now, heartbeatIntervalMillis: 1_000)
        #expect(silentCalls.withLock { $0 } == 0)
    }
}
