import Testing

@testable import PostgresClient

@Suite("Pipeline and COPY")
struct PipelineTests {
    @Test func tenThousandRowsInOneBatch() async throws {
        try await TestDatabase.withPool { pool in
            try await pool.withConnection { session in
                try await session.simpleQuery("CREATE TABLE items (id int8 PRIMARY KEY, name text NOT NULL, payload bytea)")
                let rows: [[any PostgresEncodable]] = (0..<10_000).map { i in [Int64(i), "item-\(i) ✓", [UInt8(i % 256), 0]] }
                let started = ContinuousClock.now
                let inserted = try await session.withBlockingConnection {
                    try $0.executeBatch("INSERT INTO items VALUES ($1, $2, $3)", rows: rows)
                }
                let elapsed = ContinuousClock.now - started
                #expect(inserted == 10_000)
                let check = try await session.query("SELECT count(*) AS n, sum(id)::int8 AS s, max(name) AS m FROM items")[0]
                #expect(try check.decode(Int.self, column: "n") == 10_000)
                #expect(try check.decode(Int.self, column: "s") == (0..<10_000).reduce(0, +))
                print("pipeline: 10000 inserts in \(elapsed)")
                #expect(elapsed < .seconds(20))
            }
        }
    }

    @Test func failureRollsBackTheWholeBatch() async throws {
        try await TestDatabase.withPool { pool in
            try await pool.withConnection { session in
                try await session.simpleQuery("CREATE TABLE items (id int PRIMARY KEY)")
                let rows: [[any PostgresEncodable]] = [[Int32(1)], [Int32(2)], [Int32(2)], [Int32(3)]]
                let error = await #expect(throws: PostgresError.self) {
                    try await session.withBlockingConnection { try $0.executeBatch("INSERT INTO items VALUES ($1)", rows: rows) }
                }
                #expect(error?.code == .uniqueViolation)
                #expect(try await session.query("SELECT count(*) AS n FROM items")[0].decode(Int.self, column: "n") == 0)
                // The connection is usable afterwards and out of pipeline mode.
                #expect(try await session.query("SELECT 41 + $1::int AS n", [Int32(1)])[0].decode(Int.self, column: "n") == 42)
            }
        }
    }

    @Test func mixedStatementsReturnTheirRows() async throws {
        try await TestDatabase.withPool { pool in
            let results = try await pool.withConnection { session in
                try await session.withBlockingConnection { connection in
                    try connection.pipeline([
                        PostgresStatement("CREATE TEMP TABLE kv (k text PRIMARY KEY, v int)"),
                        PostgresStatement("INSERT INTO kv VALUES ($1, $2), ($3, $4)", ["a", Int32(1), "b", Int32(2)]),
                        PostgresStatement("SELECT k, v FROM kv ORDER BY k"),
                        PostgresStatement("SELECT $1::text AS echo", ["pipelined"]),
                    ])
                }
            }
            #expect(results.count == 4)
            #expect(results[1].affectedRows == 2)
            #expect(try results[2].map { try $0.decode(String.self, column: "k") } == ["a", "b"])
            #expect(try results[3][0].decode(String.self, column: "echo") == "pipelined")
        }
    }

    @Test func copyLoadsTrickyText() async throws {
        try await TestDatabase.withPool { pool in
            try await pool.withConnection { session in
                try await session.simpleQuery("CREATE TABLE docs (id int, body text, note text)")
                let rows: [[String?]] = (0..<5_000).map { i in
                    ["\(i)", "tab\there\nnewline \\ backslash \\N ü \(i)", i % 2 == 0 ? nil : "odd"]
                }
                let copied = try await session.withBlockingConnection {
                    try $0.copyIn(table: "docs", columns: ["id", "body", "note"], rows: rows)
                }
                #expect(copied == 5_000)
                let row = try await session.query("SELECT body, note FROM docs WHERE id = 7")[0]
                #expect(try row.decode(String.self, column: "body") == "tab\there\nnewline \\ backslash \\N ü 7")
                #expect(try row.decode(String.self, column: "note") == "odd")
                let nulls = try await session.query("SELECT count(*) AS n FROM docs WHERE note IS NULL")[0]
                #expect(try nulls.decode(Int.self, column: "n") == 2_500)
                // A bad value fails the COPY with a typed error and loads nothing.
                let error = await #expect(throws: PostgresError.self) {
                    try await session.withBlockingConnection { try $0.copyIn(table: "docs", columns: ["id"], rows: [["1"], ["x"]]) }
                }
                #expect(error?.code == .invalidTextRepresentation)
                #expect(try await session.query("SELECT count(*) AS n FROM docs")[0].decode(Int.self, column: "n") == 5_000)
            }
        }
    }
}
