import Foundation
import Testing

@testable import PostgresClient

@Suite("Binding and decoding")
struct BindingTests {
    @Test func integersRoundTrip() async throws {
        try await TestDatabase.withPool { pool in
            try await pool.withConnection { session in
                let row = try await session.query(
                    "SELECT $1::int2 AS a, $2::int4 AS b, $3::int8 AS c, $4::int8 AS d",
                    [Int16.min, Int32.max, Int64.min, 42])[0]
                #expect(try row.decode(Int16.self, column: "a") == Int16.min)
                #expect(try row.decode(Int32.self, column: "b") == Int32.max)
                #expect(try row.decode(Int64.self, column: "c") == Int64.min)
                #expect(try row.decode(Int.self, column: "d") == 42)
                // Widening is allowed, narrowing only when the value fits.
                #expect(try row.decode(Int64.self, column: "a") == Int64(Int16.min))
                #expect(throws: PostgresError.self) { try row.decode(Int16.self, column: "b") }
            }
        }
    }

    @Test func floatsBooleansAndNumeric() async throws {
        try await TestDatabase.withPool { pool in
            let row = try await pool.withConnection { session in
                try await session.query(
                    "SELECT $1::float8 AS d, $2::bool AS t, $3::bool AS f, 12345.678::numeric AS n, (-0.5)::numeric AS m, 1.5::float4 AS r",
                    [Double.pi, true, false])[0]
            }
            #expect(try row.decode(Double.self, column: "d") == Double.pi)
            #expect(try row.decode(Bool.self, column: "t") == true)
            #expect(try row.decode(Bool.self, column: "f") == false)
            #expect(abs(try row.decode(Double.self, column: "n") - 12345.678) < 1e-9)
            #expect(try row.decode(Double.self, column: "m") == -0.5)
            #expect(try row.decode(Double.self, column: "r") == 1.5)
        }
    }

    @Test(arguments: [
        "plain", "", "héllo wörld — ünïcödé ✓ 日本語 🚀", "Robert'); DROP TABLE samples;--", "' OR '1'='1", "$1 $2 \\x00 \\\\",
        "line\nbreak\ttab\r", String(repeating: "x", count: 100_000),
    ])
    func stringsAreStoredVerbatim(_ text: String) async throws {
        try await TestDatabase.withPool { pool in
            try await pool.withConnection { session in
                try await session.simpleQuery("CREATE TABLE samples (id serial PRIMARY KEY, body text NOT NULL)")
                try await session.query("INSERT INTO samples (body) VALUES ($1)", [text])
                let rows = try await session.query("SELECT body, length(body) AS n FROM samples")
                #expect(rows.count == 1)
                #expect(try rows[0].decode(String.self, column: "body") == text)
                #expect(try rows[0].decode(Int.self, column: "n") == text.count)
                // The table is still there: nothing in the value was executed.
                let found = try await session.query("SELECT count(*) AS n FROM samples WHERE body = $1", [text])
                #expect(try found[0].decode(Int.self, column: "n") == 1)
            }
        }
    }

    @Test func byteaKeepsZeroBytes() async throws {
        let bytes: [UInt8] = [0, 1, 0, 255, 0, 0, 92, 120, 0] + (0...255).map { UInt8($0) }
        try await TestDatabase.withPool { pool in
            try await pool.withConnection { session in
                let row = try await session.query("SELECT $1::bytea AS b, length($1::bytea) AS n, $2::bytea AS e", [bytes, [UInt8]()])[0]
                #expect(try row.decode([UInt8].self, column: "b") == bytes)
                #expect(try row.decode(Data.self, column: "b") == Data(bytes))
                #expect(try row.decode(Int.self, column: "n") == bytes.count)
                #expect(try row.decode([UInt8].self, column: "e") == [])
                // The text protocol's hex form decodes too.
                let text = try await session.simpleQuery("SELECT '\\x00ff10'::bytea AS b")
                #expect(try text[0].decode([UInt8].self, column: "b") == [0, 255, 16])
            }
        }
    }

    @Test func nullsOfEveryType() async throws {
        try await TestDatabase.withPool { pool in
            try await pool.withConnection { session in
                let binds: [any PostgresEncodable] = [
                    Int16?.none, Int32?.none, Int64?.none, Double?.none, Bool?.none, String?.none, [UInt8]?.none, UUID?.none,
                    Date?.none, [String]?.none, PostgresJSON?.none, PostgresData.null(),
                ]
                let row = try await session.query(
                    "SELECT $1 AS a, $2 AS b, $3 AS c, $4 AS d, $5 AS e, $6 AS f, $7 AS g, $8 AS h, $9 AS i, $10 AS j, $11 AS k, $12::text AS l,"
                        + " pg_typeof($1)::text AS ta, pg_typeof($7)::text AS tg, pg_typeof($10)::text AS tj", binds)[0]
                #expect(try row.decode(Int16?.self, column: "a") == nil)
                #expect(try row.decode(Int32?.self, column: "b") == nil)
                #expect(try row.decode(Int64?.self, column: "c") == nil)
                #expect(try row.decode(Double?.self, column: "d") == nil)
                #expect(try row.decode(Bool?.self, column: "e") == nil)
                #expect(try row.decode(String?.self, column: "f") == nil)
                #expect(try row.decode([UInt8]?.self, column: "g") == nil)
                #expect(try row.decode(UUID?.self, column: "h") == nil)
                #expect(try row.decode(Date?.self, column: "i") == nil)
                #expect(try row.decode([String]?.self, column: "j") == nil)
                #expect(try row.decode(PostgresJSON?.self, column: "k") == nil)
                #expect(try row.decode(String?.self, column: "l") == nil)
                // NULLs keep their declared types.
                #expect(try row.decode(String.self, column: "ta") == "smallint")
                #expect(try row.decode(String.self, column: "tg") == "bytea")
                #expect(try row.decode(String.self, column: "tj") == "text[]")
                // A NULL never decodes into a non-optional.
                let error = #expect(throws: PostgresError.self) { try row.decode(Int64.self, column: "c") }
                #expect(error?.code == .decoding)
            }
        }
    }

    /// Found by black-box testing: a far-future filter (10^16 ms) trapped converting to Int64
    /// microseconds and crashed the server. Instants past PostgreSQL's range are its infinities.
    @Test func datesPastPostgresRangeAreItsInfinities() async throws {
        try await TestDatabase.withPool { pool in
            try await pool.withConnection { session in
                let dates = [
                    Date(timeIntervalSince1970: 1e13), Date(timeIntervalSince1970: -1e13), Date.distantFuture,
                    Date(timeIntervalSince1970: .nan), Date(timeIntervalSince1970: 9_224_318_016_300),  // past PostgreSQL's last finite time, within Int64
                    Date(timeIntervalSince1970: 253_402_300_799.999),
                ]
                let row = try await session.query(
                    "SELECT $1::timestamptz::text AS a, $2::timestamptz::text AS b, $3::timestamptz < 'infinity' AS c, "
                        + "$4::timestamptz::text AS d, $5::timestamptz::text AS e, $6::timestamptz::text AS f",
                    dates)[0]
                #expect(try row.decode(String.self, column: "a") == "infinity")
                #expect(try row.decode(String.self, column: "b") == "-infinity")
                #expect(try row.decode(Bool.self, column: "c"))  // year 4001: still a finite time
                #expect(try row.decode(String.self, column: "d") == "-infinity")
                #expect(try row.decode(String.self, column: "e") == "infinity")
                #expect(try row.decode(String.self, column: "f").hasPrefix("9999-12-31 23:59:59.99"))  // finite, to the microsecond Double gives
            }
        }
    }

    @Test func uuidsDatesArraysAndJSON() async throws {
        let id = UUID()
        let when = Date(timeIntervalSince1970: 1_700_000_000.123456)
        let texts = ["a", "", "ü", "with,comma", "{braces}", "\"quoted\""]
        try await TestDatabase.withPool { pool in
            try await pool.withConnection { session in
                let row = try await session.query(
                    """
                    SELECT $1::uuid AS u, $2::uuid AS s, $3::timestamptz AS t, $4::text[] AS texts, $5::int8[] AS ints,
                           $6::text[] AS empty, $7::jsonb AS j, $8::jsonb->>'name' AS name, $9::text[] AS sparse
                    """,
                    [
                        id, PostgresData.uuid("6ba7b810-9dad-11d1-80b4-00c04fd430c8"), when, texts, [Int64(1), -2, Int64.max], [String](),
                        PostgresJSON(#"{"name": "dag", "n": [1, 2]}"#), PostgresData.jsonb(#"{"name": "x\"y"}"#),
                        ["a", nil, "c"] as [String?],
                    ])[0]
                #expect(try row.decode(UUID.self, column: "u") == id)
                #expect(try row.decode(String.self, column: "u") == id.uuidString.lowercased())
                #expect(try row.decode(String.self, column: "s") == "6ba7b810-9dad-11d1-80b4-00c04fd430c8")
                #expect(abs(try row.decode(Date.self, column: "t").timeIntervalSince(when)) < 0.000_001)
                #expect(try row.decode([String].self, column: "texts") == texts)
                #expect(try row.decode([Int64].self, column: "ints") == [1, -2, Int64.max])
                #expect(try row.decode([String].self, column: "empty") == [])
                let json = try row.decode(PostgresJSON.self, column: "j").text
                #expect(json == #"{"n": [1, 2], "name": "dag"}"#)
                #expect(try row.decode(String.self, column: "name") == "x\"y")
                #expect(try row.decode([String?].self, column: "sparse") == ["a", nil, "c"])
                let error = #expect(throws: PostgresError.self) { try row.decode([String].self, column: "sparse") }
                #expect(error?.code == .decoding)
            }
        }
    }

    @Test func decodingErrorsAreClear() async throws {
        try await TestDatabase.withPool { pool in
            let row = try await pool.withConnection { try await $0.query("SELECT 'abc'::text AS word, 1::int4 AS one")[0] }
            let mismatch = #expect(throws: PostgresError.self) { try row.decode(Int.self, column: "word") }
            #expect(mismatch?.code == .decoding)
            #expect(mismatch?.message.contains("word") == true)
            #expect(mismatch?.message.contains("text") == true)
            let missing = #expect(throws: PostgresError.self) { try row.decode(Int.self, column: "nope") }
            #expect(missing?.message.contains("nope") == true)
            #expect(throws: PostgresError.self) { try row.decode(Int.self, at: 5) }
            #expect(try row.decode(Int.self, at: 1) == 1)
        }
    }

    @Test func affectedRowsAndCommandTag() async throws {
        try await TestDatabase.withPool { pool in
            try await pool.withConnection { session in
                try await session.simpleQuery("CREATE TABLE t (n int)")
                let insert = try await session.query("INSERT INTO t SELECT generate_series(1, $1::int)", [Int32(7)])
                #expect(insert.affectedRows == 7)
                #expect(insert.commandTag == "INSERT 0 7")
                let update = try await session.query("UPDATE t SET n = n + 1 WHERE n > $1", [Int32(4)])
                #expect(update.affectedRows == 3)
            }
        }
    }
}
