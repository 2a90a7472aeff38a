import Foundation
import Synchronization
import Testing

@testable import PostgresClient

@Suite("Pool")
struct PoolTests {
    @Test func boundIsRespectedUnderFiftyConcurrentUsers() async throws {
        try await TestDatabase.withPool(maxConnections: 5) { pool in
            let inUse = Counter()
            let peak = Counter()
            let serverPeak = Counter()
            try await withThrowingTaskGroup(of: Void.self) { group in
                for user in 0..<50 {
                    group.addTask {
                        try await pool.withConnection { session in
                            let now = inUse.increment()
                            peak.raise(to: now)
                            let backends = try await session.query(
                                "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND backend_type = 'client backend'"
                            )[0].decode(Int.self, column: "n")
                            serverPeak.raise(to: backends)
                            try await session.query("SELECT pg_sleep(0.01), $1::int", [Int32(user)])
                            inUse.decrementForTest()
                        }
                    }
                }
                try await group.waitForAll()
            }
            #expect(peak.value <= 5)
            #expect(peak.value >= 2, "users actually ran concurrently")
            #expect(serverPeak.value <= 5)
            #expect(pool.statistics.peakLent <= 5)
            #expect(pool.statistics.open <= 5)
            #expect(pool.statistics.lent == 0)
        }
    }

    /// Found by black-box testing: after the server's connections were terminated
    /// (`pg_terminate_backend`, as an operator or a connection killer does), the next plain
    /// callers met "connection lost". An idle connection whose socket the server wrote to or
    /// closed is now checked before it is lent: nobody sees the termination.
    @Test func terminatedIdleConnectionsAreReplacedUnseen() async throws {
        try await TestDatabase.withDatabase { url in
            // Never health-checked for idleness: only the socket tells.
            let pool = PostgresPool(
                configuration: PostgresPoolConfiguration(conninfo: url, maxConnections: 3, healthCheckAfterIdle: .seconds(3600)))
            defer { pool.close() }
            let before = try await withThrowingTaskGroup(of: Int32.self) { group in
                for _ in 0..<3 {
                    group.addTask { try await pool.withConnection { session in
                        try await session.query("SELECT pg_sleep(0.05)")
                        return session.backendPID
                    } }
                }
                return try await group.reduce(into: Set<Int32>()) { $0.insert($1) }
            }
            #expect(before.count == 3 && pool.statistics.open == 3)
            let killer = try PostgresConnection(conninfo: url)
            _ = try killer.query("SELECT pg_terminate_backend(pid) FROM unnest($1::int4[]) AS pid", [Array(before)])
            // Until the backends are gone, their sockets are not closed yet.
            for _ in 0..<100 where try killer.query("SELECT 1 FROM pg_stat_activity WHERE pid = ANY($1::int4[])", [Array(before)]).count > 0 {
                try await Task.sleep(for: .milliseconds(20))
            }
            for _ in 0..<6 {
                let pid = try await pool.withConnection { try await $0.query("SELECT pg_backend_pid() AS pid")[0].decode(Int32.self, column: "pid") }
                #expect(!before.contains(pid))
            }
        }
    }

    /// A connection being opened (here: retried against a port nobody listens on) holds a pool
    /// slot but is no session: the metrics show it as `opening`, not in use.
    @Test func slotsWhoseConnectionIsStillOpeningAreCountedApart() async throws {
        let pool = PostgresPool(configuration: PostgresPoolConfiguration(
            conninfo: "postgresql://nobody@127.0.0.1:1/none", maxConnections: 2, connectTimeout: .seconds(3),
            connectBackoff: Backoff(initial: .milliseconds(20), maximum: .milliseconds(50))))
        defer { pool.close() }
        let caller = Task { try await pool.withConnection { try await $0.query("SELECT 1").count } }
        var seen = false
        for _ in 0..<100 where !seen {
            seen = pool.openingCount == 1 && pool.statistics.lent == 1
            if !seen { try await Task.sleep(for: .milliseconds(10)) }
        }
        #expect(seen, "one slot opening while the connection is retried")
        _ = await caller.result
        #expect(pool.openingCount == 0 && pool.statistics.lent == 0 && pool.statistics.open == 0)
    }

    @Test func waitingCallerTimesOut() async throws {
        try await TestDatabase.withDatabase { url in
            let pool = PostgresPool(
                configuration: PostgresPoolConfiguration(conninfo: url, maxConnections: 1, acquireTimeout: .milliseconds(200)))
            defer { pool.close() }
            let holder = Task { try await pool.withConnection { try await $0.query("SELECT pg_sleep(1.5)") } }
            try await Task.sleep(for: .milliseconds(300))
            let error = await #expect(throws: PostgresError.self) { try await pool.withConnection { try await $0.query("SELECT 1") } }
            #expect(error?.code == .poolTimeout)
            _ = try await holder.value
            // Once free, the connection is lent again.
            #expect(try await pool.withConnection { try await $0.query("SELECT 1").count } == 1)
        }
    }

    /// The pool used to keep every connection a burst opened until it closed: after a spike of
    /// 64 executors the server held its whole pool (a PostgreSQL backend each) forever.
    @Test func connectionsIdleLongerThanTheIdleTimeoutAreClosed() async throws {
        try await TestDatabase.withDatabase { url in
            var configuration = PostgresPoolConfiguration(conninfo: url, maxConnections: 4)
            // Generous times: with the whole suite on two cores a task can wait seconds to resume.
            configuration.idleTimeout = .seconds(8)
            let pool = PostgresPool(configuration: configuration)
            defer { pool.close() }
            try await Self.holdAtOnce(4, pool)
            #expect(pool.statistics.open == 4)
            try await Task.sleep(for: .seconds(9))
            // The next call uses the newest idle connection; returning it closes the three others.
            _ = try await pool.withConnection { try await $0.query("SELECT 1") }
            #expect(pool.statistics.open == 1)
            var backends = 0
            for _ in 0..<50 {
                backends = try await pool.withConnection {
                    try await $0.query(
                        "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND backend_type = 'client backend'"
                    )[0].decode(Int.self, column: "n")
                }
                if backends == 1 { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(backends == 1, "the closed connections' backends ended")
            // Recently used connections stay.
            try await Self.holdAtOnce(3, pool)
            _ = try await pool.withConnection { try await $0.query("SELECT 1") }
            #expect(pool.statistics.open == 3)
        }
    }

    /// `count` callers holding a connection each at the same moment (each waits inside for the
    /// others), so the pool opens that many whatever the machine's load.
    static func holdAtOnce(_ count: Int, _ pool: PostgresPool) async throws {
        let inside = Counter()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<count {
                group.addTask {
                    try await pool.withConnection { session in
                        _ = try await session.query("SELECT 1")
                        inside.increment()
                        for _ in 0..<500 where inside.value < count { try await Task.sleep(for: .milliseconds(10)) }
                    }
                }
            }
            try await group.waitForAll()
        }
    }

    @Test func blockingWorkStaysOffTheCooperativePool() async throws {
        // Four sessions sleep in the server at once on a 2-core machine. libpq's blocking calls
        // must run on the sessions' own threads, so that the cooperative pool (one thread per
        // core) stays free: checked by where they ran, and by a pool task that finishes while all
        // four are still asleep. (An earlier version timed a 10 ms ticker against a 500 ms bound,
        // which the whole suite's load on 2 cores sometimes exceeded.)
        try await TestDatabase.withPool(maxConnections: 4) { pool in
            let threads = ThreadNames()
            let finished = Counter()
            let sleepers = Task {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for _ in 0..<4 {
                        group.addTask {
                            try await pool.withConnection { session in
                                try await session.withBlockingConnection { connection in
                                    threads.names.withLock { $0.append(DatabaseThread.currentName() ?? "not a database thread") }
                                    _ = try connection.query("SELECT pg_sleep(2)")
                                }
                            }
                            finished.increment()
                        }
                    }
                    try await group.waitForAll()
                }
            }
            // Wait until all four are inside their blocking calls.
            while threads.names.withLock({ $0.count }) < 4 { try await Task.sleep(for: .milliseconds(5)) }
            let probe = await Task { (0..<1000).reduce(0, +) }.value
            #expect(probe == 499_500)
            #expect(finished.value == 0)
            try await sleepers.value
            let names = threads.names.withLock { $0 }
            #expect(names.allSatisfy { $0.hasPrefix("postgres-") })
            #expect(Set(names).count == 4)
        }
    }

    /// A dedicated cluster: restarted, stopped, started again and given a stale pid file.
    @Test func recoversAfterServerRestartAndClusterIsReused() async throws {
        try await TestDatabase.withCluster(name: "restart") { try await recoversAfterRestart(cluster: $0) }
    }

    private func recoversAfterRestart(cluster: EmbeddedPostgres) async throws {
        let url = cluster.url(database: "postgres")
        let checked = PostgresPool(configuration: PostgresPoolConfiguration(conninfo: url, maxConnections: 3, healthCheckAfterIdle: .zero))
        let unchecked = PostgresPool(
            configuration: PostgresPoolConfiguration(conninfo: url, maxConnections: 3, healthCheckAfterIdle: .seconds(3600)))
        defer {
            checked.close()
            unchecked.close()
        }
        for pool in [checked, unchecked] {
            // Open three connections each.
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<3 { group.addTask { _ = try await pool.withConnection { try await $0.query("SELECT pg_sleep(0.05)") } } }
                try await group.waitForAll()
            }
            #expect(pool.statistics.open == 3)
        }
        _ = try await checked.withConnection { try await $0.simpleQuery("CREATE TABLE survivor (n int); INSERT INTO survivor VALUES (42)") }

        try await TestDatabase.offload { try cluster.restart() }

        // Health-checked on every checkout: no caller sees the restart.
        for _ in 0..<6 {
            #expect(try await checked.withConnection { try await $0.query("SELECT 1").count } == 1)
        }
        // A transaction that meets a dead connection runs again on a fresh one.
        let survivor = try await unchecked.withTransaction { tx in
            try await tx.query("SELECT n FROM survivor")[0].decode(Int.self, column: "n")
        }
        #expect(survivor == 42)
        // Not checked while idle: a plain caller that meets a dead connection gets a typed
        // error; that marks the other idle connections suspect, so every later caller succeeds.
        var failures: [PostgresError] = []
        for _ in 0..<6 {
            do {
                _ = try await unchecked.withConnection { try await $0.query("SELECT 1") }
            } catch let error as PostgresError {
                failures.append(error)
            }
        }
        #expect(failures.count <= 1)
        #expect(failures.allSatisfy { $0.code == .connectionLost })
        #expect(try await unchecked.withConnection { try await $0.query("SELECT n FROM survivor")[0].decode(Int.self, column: "n") } == 42)

        // Stop and start again: the cluster (and its data) is reused, not re-initialised.
        checked.close()
        unchecked.close()
        try await TestDatabase.offload { try cluster.stop() }
        let version = try String(contentsOf: cluster.dataDirectory.appendingPathComponent("PG_VERSION"), encoding: .utf8)
        #expect(version.hasPrefix("15"))
        try await TestDatabase.offload { try cluster.start() }
        let again = PostgresPool(configuration: PostgresPoolConfiguration(conninfo: url, maxConnections: 1))
        #expect(try await again.withConnection { try await $0.query("SELECT n FROM survivor")[0].decode(Int.self, column: "n") } == 42)
        again.close()

        // A crash leaves postmaster.pid behind; a dead pid in it must not block the next start.
        try await TestDatabase.offload { try cluster.stop() }
        let pidFile = cluster.dataDirectory.appendingPathComponent("postmaster.pid")
        try "999999\n\(cluster.dataDirectory.path)\n".write(to: pidFile, atomically: true, encoding: .utf8)
        try await TestDatabase.offload { try cluster.start() }
        let afterCrash = PostgresPool(configuration: PostgresPoolConfiguration(conninfo: url, maxConnections: 1))
        #expect(try await afterCrash.withConnection { try await $0.query("SELECT n FROM survivor")[0].decode(Int.self, column: "n") } == 42)
        afterCrash.close()
    }
}

extension Counter {
    func decrementForTest() { _ = add(-1) }
}

/// Names of the threads that ran some work, from any thread.
final class ThreadNames: Sendable {
    let names = Mutex<[String]>([])
}
