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
        for id in ["quiet", "alive"] {
            registry.registerSession(id, handle: .init(
                revoke: { token, reason in revoked.withLock { $0.append("\(token.taskID): \(reason)") } },
                heartbeatsStopped: { silentCalls.withLock { $0.append(id) } }))
        }
        let now: UnixMillis = 100_000
        let quiet = LeaseToken(taskID: "t-quiet", fencingToken: 1)
        let alive = LeaseToken(taskID: "t-alive", fencingToken: 1)
        registry.add([
            .init(token: quiet, executorID: "e1", sessionID: "quiet", ttlMillis: 6_000, lastHeartbeat: now - 6_000, databaseExpiry: now),
            .init(token: alive, executorID: "e2", sessionID: "alive", ttlMillis: 6_000, lastHeartbeat: now - 500, databaseExpiry: now),
        ])

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
        registry.registerSession("s", handle: .init(revoke: { _, _ in }, heartbeatsStopped: { silentCalls.withLock { $0 += 1 } }))
        let now: UnixMillis = 100_000
        let short = LeaseToken(taskID: "t-short", fencingToken: 1)
        registry.add([.init(token: short, executorID: "e", sessionID: "s", ttlMillis: 1_000, lastHeartbeat: now - 1_500, databaseExpiry: now)])
        registry.lapseOrRevoke(short, reason: "lease lapsed", now: now, heartbeatIntervalMillis: 2_000)
        #expect(silentCalls.withLock { $0 } == 0)
        #expect(registry.totalLeases == 0)
        // Quiet for two intervals: stopped.
        let other = LeaseToken(taskID: "t-other", fencingToken: 1)
        registry.add([.init(token: other, executorID: "e", sessionID: "s", ttlMillis: 1_000, lastHeartbeat: now - 4_000, databaseExpiry: now)])
        registry.lapseOrRevoke(other, reason: "lease lapsed", now: now, heartbeatIntervalMillis: 2_000)
        #expect(silentCalls.withLock { $0 } == 1)
    }
}
