import Foundation
import PostgresClient

/// Codable domain values (DAG, TaskSpec, Query, planning record) stored as `jsonb`.
///
/// Why JSON rather than columns: these values are read and written whole, never filtered on by
/// SQL (the columns the hot path filters on — state, capabilities, priority, rank, times — are
/// real columns beside them), and their shape evolves with the API. `jsonb` keeps them one
/// encode away from the domain types and still inspectable with SQL when debugging.
enum JSONColumn {
    static func encode<T: Encodable>(_ value: T) throws -> PostgresJSON {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return PostgresJSON(String(decoding: try encoder.encode(value), as: UTF8.self))
    }

    static func decode<T: Decodable>(_ type: T.Type, from json: PostgresJSON) throws -> T {
        try JSONDecoder().decode(type, from: Data(json.text.utf8))
    }

    /// A string dictionary as a jsonb object (labels, inputs).
    static func object(_ dictionary: [String: String]) throws -> PostgresJSON { try encode(dictionary) }
}
