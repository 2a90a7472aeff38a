import Testing

@testable import PostgresClient

@Suite("Pipelined transactions and prepared statements")
struct PipelinedTransactionTests {
    @Test func queuedStatementsCommitWithTheTransaction() async throws {
        try await TestDatabase.withPool(maxConnections: 1) { pool in
            try await pool.withConnection { try await $0.simpleQuery("CREATE TABLE notes (id int PRIMARY KEY, body text)") }
            let seen = try await pool.withPipelinedTransaction(settings: [PostgresSetting("enable_sort", "off")]) { tx in
                tx.queue("INSERT INTO notes VALUES ($1, $2)", [1, "queued first"])
                // BEGIN, the queued insert and this statement travel together, in order.
                let rows = try await tx.query("SELECT count(*) AS n, current_setting('enable_sort') AS sort FROM notes")
                tx.queue("INSERT INTO notes VALUES ($1, $2)", [2, "sent with COMMIT"])
                return (try rows[0].decode(Int.self, column: "n"), try rows[0].decode(String.self, column: "sort"))
            }
            #expect(seen.0 == 1 && seen.1 == "off")
            let bodies = try await pool.withConnection { try await $0.query("SELECT body FROM notes ORDER BY id") }
            #expect(try bodies.map { try $0.decode(String.self, column: "body") } == ["queued first", "sent with COMMIT"])
            let after = try await pool.withConnection { try await $0.query("SELECT current_setting('enable_sort') AS sort")[0] }
            #expect(try after.decode(String.self, column: "sort") == "on")
        }
    }

    @Test func aFailingQueuedStatementRollsBackEverything() async throws {
        try await TestDatabase.withPool(maxConnections: 1) { pool in
            try await pool.withConnection { try await $0.simpleQuery("CREATE TABLE notes (id int PRIMARY KEY, body text)") }
            let error = await #expect(throws: PostgresError.self) {
                try await pool.withPipelinedTransaction { tx in
                    try await tx.query("INSERT INTO notes VALUES ($1, $2)", [1, "first"])
                    tx.queue("INSERT INTO notes VALUES ($1, $2)", [1, "duplicate, found only at COMMIT"])
                }
            }
            #expect(error?.code == .uniqueViolation)
            let count = try await pool.withConnection { try await $0.query("SELECT count(*) AS n FROM notes")[0].decode(Int.self, column: "n") }
            #expect(count == 0)
            // The connection is clean again and takes the next transaction.
            try await pool.withPipelinedTransaction { tx in tx.queue("INSERT INTO notes VALUES ($1, $2)", [3, "kept"]) }
            let kept = try await pool.withConnection { try await $0.query("SELECT count(*) AS n FROM notes")[0].decode(Int.self, column: "n") }
            #expect(kept == 1)
        }
    }

    @Test func aTransactionThatSendsNothingSendsNoBegin() async throws {
        try await TestDatabase.withPool(maxConnections: 1) { pool in
            let before = try await pool.withConnection { try await $0.query("SELECT pg_current_xact_id_if_assigned() IS NULL AS none")[0] }
            #expect(try before.decode(Bool.self, column: "none"))
            try await pool.withPipelinedTransaction { _ in }
            let status = try await pool.withConnection { session in
                try await session.withBlockingConnection { $0.transactionStatus == .idle }
            }
            #expect(status)
        }
    }

    @Test func statementsArePreparedOncePerConnectionAndSurviveFailures() async throws {
        try await TestDatabase.withPool(maxConnections: 1) { pool in
            try await pool.withConnection { try await $0.simpleQuery("CREATE TABLE notes (id int PRIMARY KEY, body text)") }
            let insert = "INSERT INTO notes VALUES ($1, $2)"
            for id in 1...3 {
                try await pool.withPipelinedTransaction { tx in try await tx.query(insert, [id, "note \(id)"]) }
            }
            // The same statement failing (duplicate key) in a pipeline, then again on its own.
            await #expect(throws: PostgresError.self) {
                try await pool.withPipelinedTransaction { tx in try await tx.query(insert, [1, "again"]) }
            }
            try await pool.withPipelinedTransaction { tx in try await tx.query(insert, [4, "note 4"]) }
            let prepared = try await pool.withConnection { session in
                try await session.withBlockingConnection { $0.preparedStatementCount }
            }
            #expect(prepared == 1)
            let count = try await pool.withConnection { try await $0.query("SELECT count(*) AS n FROM notes")[0].decode(Int.self, column: "n") }
            #expect(count == 4)
            // A statement first prepared inside a pipeline that failed is prepared afresh next time.
            let select = "SELECT body FROM notes WHERE id = $1"
            await #expect(throws: PostgresError.self) {
                try await pool.withPipelinedTransaction { tx in
                    tx.queue("SELECT 1 / 0")
                    try await tx.query(select, [1])
                }
            }
            let body = try await pool.withPipelinedTransaction { tx in try await tx.query(select, [2])[0].decode(String.self, column: "body") }
            #expect(body == "note 2")
        }
    }
}
