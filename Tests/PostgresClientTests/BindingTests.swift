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
}
