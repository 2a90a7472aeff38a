import Foundation
import Testing

@testable import PostgresClient

/// A client that vanishes mid-transaction (a half-open connection after a partition) must not hold
/// its row locks for hours: the pool asks the server to end sessions idle inside a transaction.
@Suite("Idle in transaction")
struct IdleInTransactionTests {
    @Test func serverEndsASessionIdleInATransactionAndReleasesItsLocks() async throws {
        try await TestDatabase.withDatabase { url in
            var configuration = PostgresPoolConfiguration(conninfo: url, maxConnections: 2)
            configuration.idleInTransactionTimeout = .milliseconds(500)
            let pool = PostgresPool(configuration: configuration)
            defer { pool.close() }
            try await pool.withConnection { try await $0.simpleQuery("CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t VALUES (1, 0)") }

            try await pool.withConnection { stalled in
                #expect(try await stalled.query("SHOW idle_in_transaction_session_timeout")[0].decode(String.self, at: 0) == "500ms")
                // One message: sent as two, a loaded machine (the full parallel run on two cores) could
                // leave the session idle in its transaction past the timeout between them, and the
                // server ended it before it took the lock (seen in a CI rehearsal).
                try await stalled.simpleQuery("BEGIN; UPDATE t SET v = 1 WHERE id = 1")
                // The client goes quiet while holding the row lock; the other writer must get through.
                try await pool.withConnection { writer in
                    let started = ContinuousClock.now
                    try await writer.query("UPDATE t SET v = 2 WHERE id = 1")
                    #expect(ContinuousClock.now - started < .seconds(30))
                }
                await #expect(throws: PostgresError.self) { try await stalled.query("SELECT 1") }
            }
            #expect(try await pool.withConnection { try await $0.query("SELECT v FROM t WHERE id = 1")[0].decode(Int.self, at: 0) } == 2)
        }
    }
}
