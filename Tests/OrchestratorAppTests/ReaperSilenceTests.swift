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

        registry.revokeExpired(quiet, reason: "lease expired", now: now)
        registry.revokeExpired(alive, reason: "lease expired", now: now)

        #expect(silentCalls.withLock { $0 } == ["quiet"])
        #expect(revoked.withLock { $0 }.sorted() == ["t-alive: lease expired", "t-quiet: lease expired"])
        #expect(registry.totalLeases == 0)
    }
}
