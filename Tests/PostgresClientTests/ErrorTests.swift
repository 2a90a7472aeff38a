import Testing

@testable import PostgresClient

@Suite("Typed errors")
struct ErrorTests {
    @Test func uniqueViolationNamesTheConstraint() async throws {
        try await TestDatabase.withPool { pool in
            try await pool.withConnection { session in
                try await session.simpleQuery("CREATE TABLE accounts (id int PRIMARY KEY, email text CONSTRAINT accounts_email_key UNIQUE)")
                try await session.query("INSERT INTO accounts VALUES (1, $1)", ["a@example.com"])
                let error = await #expect(throws: PostgresError.self) {
                    try await session.query("INSERT INTO accounts VALUES (2, $1)", ["a@example.com"])
                }
                #expect(error?.code == .uniqueViolation)
                #expect(error?.sqlstate == "23505")
                #expect(error?.constraint == "accounts_email_key")
                #expect(error?.table == "accounts")
                #expect(error?.detail?.contains("a@example.com") == true)
                // The connection stays usable after a statement error.
                #expect(try await session.query("SELECT 1").count == 1)
            }
        }
    }

    @Test func classifiedServerErrors() async throws {
        try await TestDatabase.withPool { pool in
            try await pool.withConnection { session in
                try await session.simpleQuery(
                    "CREATE TABLE parent (id int PRIMARY KEY); CREATE TABLE child (id int REFERENCES parent, n int CHECK (n > 0) NOT NULL)")
                let cases: [(String, [any PostgresEncodable], PostgresError.Code)] = [
                    ("SELEC 1", [], .syntaxError),
                    ("SELECT * FROM missing_table", [], .undefinedTable),
                    ("SELECT no_column FROM parent", [], .undefinedColumn),
                    ("INSERT INTO child VALUES ($1, 1)", [Int32(9)], .foreignKeyViolation),
                    ("INSERT INTO child VALUES (NULL, $1)", [Int32(-1)], .checkViolation),
                    ("INSERT INTO child VALUES (NULL, NULL)", [], .notNullViolation),
                    ("SELECT $1::int", ["not a number"], .invalidTextRepresentation),
                    ("SELECT 1 / 0", [], .dataException),
                ]
                for (sql, binds, code) in cases {
                    let error = await #expect(throws: PostgresError.self, "\(sql)") { try await session.query(sql, binds) }
                    #expect(error?.code == code, "\(sql)")
                    #expect(error?.severity == "ERROR")
                }
            }
        }
    }

    @Test func connectionFailureIsTyped() async throws {
        let pool = PostgresPool(
            configuration: PostgresPoolConfiguration(
                conninfo: "host=127.0.0.1 port=\(TestDatabase.freePort()) dbname=x connect_timeout=2", maxConnections: 1,
                connectTimeout: .milliseconds(300)))
        defer { pool.close() }
        let error = await #expect(throws: PostgresError.self) { try await pool.withConnection { try await $0.query("SELECT 1") } }
        #expect(error?.code == .connectionFailed)
        #expect(error?.isConnectionLoss == true)
    }

    @Test func cancellingTheTaskCancelsTheStatement() async throws {
        try await TestDatabase.withPool { pool in
            let task = Task {
                try await pool.withConnection { try await $0.query("SELECT pg_sleep(30)") }
            }
            // Wait until the statement is running on the server.
            var running = false
            for _ in 0..<200 where !running {
                try await Task.sleep(for: .milliseconds(25))
                running = try await pool.withConnection { session in
                    try await session.query(
                        "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND query = 'SELECT pg_sleep(30)' AND state = 'active'"
                    )[0].decode(Int.self, column: "n") == 1
                }
            }
            #expect(running)
            let started = ContinuousClock.now
            task.cancel()
            let result = await task.result
            #expect(ContinuousClock.now - started < .seconds(5))
            #expect(throws: PostgresError.self) { try result.get() }
            #expect((try? result.get()) == nil)
            if case .failure(let error as PostgresError) = result { #expect(error.code == .queryCanceled) }
            // The connection went back to the pool in a usable state.
            #expect(try await pool.withConnection { try await $0.query("SELECT 1").count } == 1)
        }
    }
    /// A cancel request cancels whatever the backend runs when it arrives. Sent in the background
    /// and still travelling when its statement had ended, it cancelled the next borrower's
    /// statement on the same connection (found by black-box testing: cancelled watches made other
    /// callers' requests fail). One connection, borrowers cancelled at random moments of short
    /// statements, each followed at once by a borrower that is never cancelled: that one must never
    /// see its statement cancelled.
    @Test func aCancelNeverLandsOnTheNextBorrowersStatement() async throws {
        try await TestDatabase.withPool(maxConnections: 1) { pool in
            var cancelledOthers = 0
            for round in 0..<300 {
                let victim = Task {
                    try await pool.withConnection { session in
                        for _ in 0..<3 { try await session.query("SELECT pg_sleep(0.0005)") }
                    }
                }
                try await Task.sleep(for: .microseconds(200 + (round % 7) * 300))
                victim.cancel()
                _ = await victim.result
                do {
                    try await pool.withConnection { session in
                        for _ in 0..<5 { try await session.query("SELECT 1") }
                    }
                } catch let error as PostgresError where error.code == .queryCanceled {
                    cancelledOthers += 1
                }
            }
            #expect(cancelledOthers == 0)
        }
    }
}
