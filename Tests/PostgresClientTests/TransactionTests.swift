import Synchronization
import Testing

@testable import PostgresClient

/// Releases waiters once `count` parties have arrived.
actor Barrier {
    private let count: Int
    private var arrived = 0
    private var waiting: [CheckedContinuation<Void, Never>] = []

    init(count: Int) { self.count = count }

    func arriveAndWait() async {
        arrived += 1
        if arrived >= count {
            for waiter in waiting { waiter.resume() }
            waiting.removeAll()
            return
        }
        await withCheckedContinuation { waiting.append($0) }
    }
}

struct Boom: Error {}

/// A thread-safe counter for closures that run several times.
final class Counter: Sendable {
    private let count = Mutex(0)
    @discardableResult
    func increment() -> Int { add(1) }
    @discardableResult
    func add(_ delta: Int) -> Int {
        count.withLock {
            $0 += delta; return $0
        }
    }
    var value: Int { count.withLock { $0 } }
    /// Keeps the largest value seen.
    func raise(to candidate: Int) { count.withLock { $0 = max($0, candidate) } }
}

@Suite("Transactions")
struct TransactionTests {
    @Test func thrownErrorRollsBackEverything() async throws {
        try await TestDatabase.withPool { pool in
            try await pool.withConnection { try await $0.simpleQuery("CREATE TABLE ledger (id int PRIMARY KEY, note text)") }
            await #expect(throws: Boom.self) {
                try await pool.withTransaction { tx in
                    try await tx.query("INSERT INTO ledger VALUES (1, $1)", ["first"])
                    try await tx.query("INSERT INTO ledger VALUES (2, $1)", ["second"])
                    throw Boom()
                }
            }
            // A server error mid-transaction rolls back the earlier statements too.
            let error = await #expect(throws: PostgresError.self) {
                try await pool.withTransaction { tx in
                    try await tx.query("INSERT INTO ledger VALUES (3, $1)", ["third"])
                    try await tx.query("INSERT INTO ledger VALUES (3, $1)", ["duplicate"])
                }
            }
            #expect(error?.code == .uniqueViolation)
            let count = try await pool.withConnection {
                try await $0.query("SELECT count(*) AS n FROM ledger")[0].decode(Int.self, column: "n")
            }
            #expect(count == 0)
            // And a successful one commits.
            try await pool.withTransaction { tx in try await tx.query("INSERT INTO ledger VALUES (4, $1)", ["kept"]) }
            let kept = try await pool.withConnection {
                try await $0.query("SELECT note FROM ledger")[0].decode(String.self, column: "note")
            }
            #expect(kept == "kept")
        }
    }

    @Test func localSettingsLastForTheirTransactionOnly() async throws {
        try await TestDatabase.withPool(maxConnections: 1) { pool in
            let inside = try await pool.withTransaction(settings: [PostgresSetting("enable_sort", "off"), PostgresSetting("jit", "off")]) { tx in
                try await tx.query("SELECT current_setting('enable_sort') AS sort, current_setting('jit') AS jit")[0]
            }
            #expect(try inside.decode(String.self, column: "sort") == "off")
            #expect(try inside.decode(String.self, column: "jit") == "off")
            // The same (only) connection, after COMMIT: back to the server's defaults.
            let after = try await pool.withConnection { try await $0.query("SELECT current_setting('enable_sort') AS sort")[0] }
            #expect(try after.decode(String.self, column: "sort") == "on")
        }
    }

    @Test func swallowedErrorCannotCommitSilently() async throws {
        try await TestDatabase.withPool { pool in
            let error = await #expect(throws: PostgresError.self) {
                try await pool.withTransaction { tx in
                    _ = try? await tx.query("SELECT * FROM missing_table")
                    _ = try? await tx.query("SELECT 1")
                }
            }
            #expect(error?.message.contains("rolled back") == true)
        }
    }

    @Test func connectionReturnedMidTransactionIsRolledBack() async throws {
        try await TestDatabase.withPool(maxConnections: 1) { pool in
            try await pool.withConnection { try await $0.simpleQuery("CREATE TABLE t (n int)") }
            await #expect(throws: Boom.self) {
                try await pool.withConnection { session in
                    try await session.simpleQuery("BEGIN")
                    try await session.query("INSERT INTO t VALUES (1)")
                    throw Boom()
                }
            }
            // The only connection comes back idle, without the uncommitted row.
            let count = try await pool.withConnection { session -> Int in
                #expect(try await session.withBlockingConnection { $0.transactionStatus } == .idle)
                return try await session.query("SELECT count(*) AS n FROM t")[0].decode(Int.self, column: "n")
            }
            #expect(count == 0)
        }
    }

    @Test func serializationFailureIsRetried() async throws {
        try await TestDatabase.withPool(maxConnections: 2) { pool in
            try await pool.withConnection {
                try await $0.simpleQuery("CREATE TABLE doctors (name text PRIMARY KEY, on_call bool NOT NULL)")
            }
            try await pool.withConnection {
                try await $0.query("INSERT INTO doctors VALUES ('alice', true), ('bob', true)")
            }
            // Write skew: each transaction checks that someone else is on call, then leaves.
            // Under SERIALIZABLE one of them must fail (40001) and, retried, see the other's change.
            let barrier = Barrier(count: 2)
            let attempts = Counter()
            let retry = PostgresRetryPolicy(maxAttempts: 5, backoff: Backoff(initial: .milliseconds(1), maximum: .milliseconds(5)))
            async let alice = Self.goOffCall("alice", pool: pool, barrier: barrier, attempts: attempts, retry: retry)
            async let bob = Self.goOffCall("bob", pool: pool, barrier: barrier, attempts: attempts, retry: retry)
            let results = try await [alice, bob]
            #expect(results.filter { $0 }.count == 1, "exactly one doctor may leave")
            #expect(attempts.value == 3, "one transaction ran twice")
            let onCall = try await pool.withConnection {
                try await $0.query("SELECT count(*) AS n FROM doctors WHERE on_call")[0].decode(Int.self, column: "n")
            }
            #expect(onCall == 1)
        }
    }

    private static func goOffCall(
        _ name: String, pool: PostgresPool, barrier: Barrier, attempts: Counter, retry: PostgresRetryPolicy
    ) async throws -> Bool {
        try await pool.withTransaction(isolation: .serializable, retry: retry) { tx in
            let attempt = attempts.increment()
            let others = try await tx.query("SELECT count(*) AS n FROM doctors WHERE on_call AND name <> $1", [name])[0]
                .decode(Int.self, column: "n")
            if attempt <= 2 { await barrier.arriveAndWait() }  // both have read before either writes
            guard others > 0 else { return false }
            try await tx.query("UPDATE doctors SET on_call = false WHERE name = $1", [name])
            return true
        }
    }

    @Test func retriesStopAfterMaxAttempts() async throws {
        try await TestDatabase.withPool { pool in
            let attempts = Counter()
            let error = await #expect(throws: PostgresError.self) {
                try await pool.withTransaction(
                    retry: PostgresRetryPolicy(maxAttempts: 3, backoff: Backoff(initial: .milliseconds(1), maximum: .milliseconds(2)))
                ) { tx in
                    attempts.increment()
                    // Raise a real serialization_failure from the server.
                    try await tx.simpleQuery(
                        "DO $$ BEGIN RAISE EXCEPTION USING ERRCODE = 'serialization_failure', MESSAGE = 'forced'; END $$")
                }
            }
            #expect(error?.code == .serializationFailure)
            #expect(attempts.value == 3)
            // Errors that are not transient are not retried.
            let once = Counter()
            await #expect(throws: PostgresError.self) {
                try await pool.withTransaction { tx in
                    once.increment()
                    try await tx.query("SELECT 1/0")
                }
            }
            #expect(once.value == 1)
        }
    }

    @Test func lostConnectionBeforeCommitIsRetriedOnAFreshConnection() async throws {
        try await TestDatabase.withPool(maxConnections: 2) { pool in
            try await pool.withConnection { try await $0.simpleQuery("CREATE TABLE notes (body text)") }
            let attempts = Counter()
            try await pool.withTransaction { tx in
                if attempts.increment() == 1 {
                    // Another connection kills this one mid-transaction.
                    let pid = tx.backendPID
                    try await pool.withConnection { try await $0.query("SELECT pg_terminate_backend($1)", [pid]) }
                }
                try await tx.query("INSERT INTO notes VALUES ($1)", ["written once"])
            }
            #expect(attempts.value == 2)
            let notes = try await pool.withConnection { session in
                try await session.query("SELECT body FROM notes").map { try $0.decode(String.self, column: "body") }
            }
            #expect(notes == ["written once"])
        }
    }

    @Test func lostConnectionAtCommitIsReportedNotRetried() async throws {
        try await TestDatabase.withPool(maxConnections: 2) { pool in
            try await pool.withConnection { try await $0.simpleQuery("CREATE TABLE notes (body text)") }
            let attempts = Counter()
            let error = await #expect(throws: PostgresError.self) {
                try await pool.withTransaction { tx in
                    attempts.increment()
                    try await tx.query("INSERT INTO notes VALUES ($1)", ["maybe"])
                    // The connection dies after the last statement: COMMIT is what finds out.
                    let pid = tx.backendPID
                    try await pool.withConnection { try await $0.query("SELECT pg_terminate_backend($1)", [pid]) }
                }
            }
            #expect(error?.code == .commitOutcomeUnknown)
            #expect(attempts.value == 1)
            // Here the server had not received COMMIT, so nothing was stored.
            let count = try await pool.withConnection {
                try await $0.query("SELECT count(*) AS n FROM notes")[0].decode(Int.self, column: "n")
            }
            #expect(count == 0)
        }
    }

    @Test func backoffGrowsAndIsCapped() {
        let backoff = Backoff(initial: .milliseconds(10), maximum: .milliseconds(100))
        #expect(backoff.delay(attempt: 1, random: 1) == .milliseconds(10))
        #expect(backoff.delay(attempt: 2, random: 1) == .milliseconds(20))
        #expect(backoff.delay(attempt: 3, random: 0) == .milliseconds(20))
        #expect(backoff.delay(attempt: 10, random: 1) == .milliseconds(100))
    }
}
