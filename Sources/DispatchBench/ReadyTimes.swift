import Foundation
import PostgresClient

/// The instant each task became ready, read from the database after a run (`tasks.ready_at`, which
/// the server writes from its clock in the transaction that made the task ready: submission for
/// roots, the upstream completion for the others). Same machine, same clock as the executors'
/// receive times; `ready_at` has millisecond resolution (the server's clock is UnixMillis).
enum ReadyTimes {
    /// - Parameter keyPrefix: only tasks whose key starts with it (nil: all).
    static func load(databaseURL: String, workflowIDs: [String], keyPrefix: String? = nil) throws -> [String: Double] {
        let connection = try PostgresConnection(conninfo: databaseURL)
        let rows = try connection.query(
            """
            SELECT id::text AS id, (extract(epoch FROM ready_at) * 1000)::float8 AS ready_ms FROM tasks
             WHERE workflow_id = ANY($1::text[]) AND ($2::text IS NULL OR starts_with(key, $2::text))
            """,
            [workflowIDs, keyPrefix])
        var ready: [String: Double] = [:]
        for row in rows {
            if let millis = try row.decode(Double?.self, column: "ready_ms") { ready[try row.decode(String.self, column: "id")] = millis }
        }
        return ready
    }

    /// Ready → assignment received, in ms, for every task received that has a ready time.
    static func latencies(received: [String: Double], ready: [String: Double]) -> [Double] {
        received.compactMap { id, at in ready[id].map { at - $0 } }.sorted()
    }
}

/// Nearest-rank percentile of sorted values.
func percentile(_ sorted: [Double], _ p: Double) -> Double {
    guard !sorted.isEmpty else { return .nan }
    let rank = Int((p / 100 * Double(sorted.count)).rounded(.up))
    return sorted[min(max(rank, 1), sorted.count) - 1]
}
