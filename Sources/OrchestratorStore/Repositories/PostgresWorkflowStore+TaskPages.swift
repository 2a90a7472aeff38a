import Foundation
import OrchestratorApp
import OrchestratorDomain
import PostgresClient

/// `ListTasks`: a workflow's tasks in key order, a page at a time, bounded in count and in bytes.
extension PostgresWorkflowStore {
    public func taskPage(_ query: TaskPageQuery) async throws -> TaskPage {
        let after = try query.pageToken.map { try TaskPageToken.decode($0, workflowID: query.workflowID) }
        // Stored states (a task waiting out its backoff is stored `retry_wait`, read as READY).
        let states = query.states.flatMap { $0 == .ready ? ["ready", TaskStateColumn.retryWait] : [$0.rawValue] }
        return try await context.read { session in
            // First the keys and sizes (tasks_workflow_key_key; octet_length reads a TOASTed
            // bytea's size from its pointer), to cut the page before any large value is read. The
            // spec counts too: names and descriptions of 60 KB made 10 MB pages (black-box testing).
            let sizes = try await session.query(
                """
                SELECT t.key, \(Self.specAndPayloadBytes)
                       + CASE WHEN $5::bool THEN coalesce(octet_length(t.result), 0) ELSE 0 END AS bytes
                  FROM tasks t
                 WHERE t.workflow_id = $1 AND ($2::text IS NULL OR t.key > $2)
                   AND (cardinality($3::text[]) = 0 OR t.state = ANY($3::text[]))
                 ORDER BY t.key
                 LIMIT $4
                """, [query.workflowID, after, states, query.pageSize + 1, query.includeResults])
            var keys: [String] = []
            var bytes = 0
            for row in sizes.prefix(query.pageSize) {
                let size = try row.decode(Int.self, column: "bytes")
                if !keys.isEmpty && bytes + size > query.maxBytes { break }
                keys.append(try row.decode(String.self, column: "key"))
                bytes += size
            }
            guard !keys.isEmpty else {
                // No tasks left, or no workflow any more (deleted since the caller looked it up).
                try await Self.checkStillThere(query.workflowID, session: session)
                return TaskPage(tasks: [], upstreamKeys: [:], nextPageToken: nil)
            }
            let columns = query.includeResults ? TaskRow.columns : TaskRow.columns.replacingOccurrences(of: "t.result", with: "NULL::bytea AS result")
            let rows = try await session.query(
                """
                SELECT \(columns)
                  FROM tasks t JOIN workflows w ON w.id = t.workflow_id
                 WHERE t.workflow_id = $1 AND t.key = ANY($2::text[])
                 ORDER BY t.key
                """, [query.workflowID, keys])
            // Fewer rows than keys: tasks removed by an update since the keys were read, or the
            // whole workflow deleted (retention). That answered an empty page with a next page
            // token (found by black-box testing); a deleted workflow is NOT_FOUND.
            if rows.count < keys.count { try await Self.checkStillThere(query.workflowID, session: session) }
            let decoder = JSONDecoder()
            let tasks = try rows.map { try TaskRow.decode($0, decoder: decoder) }
            // edges_downstream_idx, then tasks_pkey for the upstream keys.
            let edges = try await session.query(
                """
                SELECT e.downstream_task_id AS task_id, u.key
                  FROM edges e JOIN tasks u ON u.id = e.upstream_task_id
                 WHERE e.downstream_task_id = ANY($1::uuid[])
                 ORDER BY u.key
                """, [tasks.compactMap { UUID(uuidString: $0.taskID) }])
            var upstream: [String: [TaskKey]] = [:]
            for edge in edges {
                upstream[try edge.decode(UUID.self, column: "task_id").uuidString.lowercased(), default: []]
                    .append(TaskKey(try edge.decode(String.self, column: "key")))
            }
            let more = sizes.count > keys.count
            return TaskPage(
                tasks: tasks, upstreamKeys: upstream,
                nextPageToken: more ? TaskPageToken(workflowID: query.workflowID, key: keys.last!).encoded : nil)
        }
    }
}

extension PostgresWorkflowStore {
    /// Throws NOT_FOUND when the workflow no longer exists (workflows primary key). A workflow is
    /// deleted in one transaction (retention), so a later statement that finds it finds all of it.
    static func checkStillThere(_ workflowID: String, session: PostgresSession) async throws {
        let found = try await session.query("SELECT 1 FROM workflows WHERE id = $1", [workflowID])
        if found.isEmpty { throw StoreError.notFound("workflow \(workflowID)") }
    }

    /// A task's spec and payload in bytes, as answers carry them (ListTasks pages, GetWorkflow).
    static let specAndPayloadBytes = "octet_length(t.input) + octet_length(t.metadata::text)"

    public func taskBytes(workflowID: String) async throws -> Int {
        try await context.read { session in
            // tasks_workflow_key_key; octet_length of a TOASTed bytea reads its size from the pointer.
            let rows = try await session.query(
                """
                SELECT coalesce(sum(\(Self.specAndPayloadBytes) + coalesce(octet_length(t.result), 0)), 0)::int8
                       AS bytes
                  FROM tasks t WHERE t.workflow_id = $1
                """, [workflowID])
            return try rows.first?.decode(Int.self, column: "bytes") ?? 0
        }
    }
}

/// The opaque cursor of `taskPage`: the workflow and the last key of a page, base64url. The
/// workflow is checked: another workflow's token silently listed nothing, or the wrong tasks
/// (found by black-box testing).
struct TaskPageToken {
    var workflowID: String
    var key: String

    var encoded: String {
        Data("t|\(workflowID)|\(key)".utf8).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
    }

    /// The last key of the previous page of `workflowID`'s tasks.
    static func decode(_ token: String, workflowID: String) throws -> String {
        let base64 = token.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        // Workflow ids never hold `|`; keys are validated at submission and never hold a NUL
        // (PostgreSQL text cannot). Anything else is not a token this server issued.
        guard let data = Data(base64Encoded: base64), let text = String(data: data, encoding: .utf8), text.hasPrefix("t|"),
            !text.unicodeScalars.contains("\0")
        else { throw StoreError.malformedPageToken }
        let rest = text.dropFirst(2)
        guard let bar = rest.firstIndex(of: "|"), rest.index(after: bar) < rest.endIndex else { throw StoreError.malformedPageToken }
        let issuedFor = String(rest[..<bar])
        guard issuedFor == workflowID else { throw StoreError.pageTokenOfAnotherListing("the tasks of workflow \(issuedFor)") }
        return String(rest[rest.index(after: bar)...])
    }
}
