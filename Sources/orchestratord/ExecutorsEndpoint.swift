import Foundation
import OrchestratorApp
import OrchestratorObservability

/// `GET /executors` on the admin port: the executor lease streams open on this server, as JSON,
/// so an operator can see who is connected, what each can take and how busy it is, and tell a
/// task stuck for want of an executor from one waiting its turn (docs/OBSERVABILITY.md).
enum ExecutorsEndpoint {
    struct Entry: Encodable {
        var executor_id: String
        var session_id: String
        var capabilities: [String]
        var labels: [String: String]
        var tenants: [String]?
        var version: String
        var max_in_flight: Int
        var leases_held: Int
        var connected_at: String
        var last_heard_ms_ago: Int64
        var draining: Bool
    }

    struct Page: Encodable {
        var executors: [Entry]
        /// Open streams taking work, by capability, as `orchestrator_executor_sessions_by_capability`.
        var sessions_by_capability: [String: Int]
    }

    static func response(_ sessions: [ExecutorSession]?, now: UnixMillis) -> AdminResponse {
        guard let sessions else { return .text(503, "dispatch has not started yet\n") }
        let entries = sessions.map { session in
            Entry(
                executor_id: session.executor.executorID, session_id: session.sessionID,
                capabilities: session.executor.capabilities.sorted(), labels: session.executor.labels,
                tenants: session.executor.tenants?.sorted(), version: session.executor.version,
                max_in_flight: session.executor.maxInFlight, leases_held: session.leasesHeld,
                connected_at: timestamp(session.openedAt), last_heard_ms_ago: max(0, now - session.lastHeard),
                draining: session.draining)
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let body = (try? encoder.encode(Page(executors: entries, sessions_by_capability: byCapability(sessions)))) ?? Data("{}".utf8)
        return AdminResponse(status: 200, contentType: "application/json", body: Array(body) + [UInt8(ascii: "\n")])
    }

    /// Open streams by advertised capability; a stream advertising none counts under "" (it
    /// takes only tasks that require none, as `orchestrator_ready_tasks` counts them). A draining
    /// stream takes no work and is left out: counted, it hid a task nobody would take from the
    /// alert built on this (found by black-box testing).
    static func byCapability(_ sessions: [ExecutorSession]) -> [String: Int] {
        var counts: [String: Int] = [:]
        for session in sessions where !session.draining {
            if session.executor.capabilities.isEmpty { counts["", default: 0] += 1 }
            for capability in session.executor.capabilities { counts[capability, default: 0] += 1 }
        }
        return counts
    }

    private static func timestamp(_ millis: UnixMillis) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: Date(timeIntervalSince1970: Double(millis) / 1000))
    }
}
