import Foundation
import OrchestratorApp
import OrchestratorDomain
import PostgresClient

extension PostgresWorkflowStore {
    public func workflow(id: String, tenant: String?, queryGraph: QueryGraphRead) async throws -> WorkflowRecord? {
        try await context.read { session in
            // Primary key of workflows (and of queries).
            let rows = try await session.query(
                """
                SELECT \(WorkflowRow.columns(queryGraph))
                  FROM workflows w JOIN queries q ON q.workflow_id = w.id
                 WHERE w.id = $1 AND ($2::text IS NULL OR w.tenant = $2)
                """, [id, tenant])
            return try rows.first.map { try WorkflowRow.decode($0, decoder: JSONDecoder()) }
        }
    }

    public func workflowHead(id: String, tenant: String?) async throws -> WorkflowHead? {
        try await context.read { session in
            let rows = try await session.query(
                "SELECT id, tenant, state, current_dag_version FROM workflows WHERE id = $1 AND ($2::text IS NULL OR tenant = $2)",
                [id, tenant])
            guard let row = rows.first else { return nil }
            let state = try row.decode(String.self, column: "state")
            guard let known = WorkflowState(rawValue: state) else { throw PostgresError(code: .decoding, message: "unknown workflow state \(state)") }
            return WorkflowHead(
                workflowID: try row.decode(String.self, column: "id"), tenant: try row.decode(String.self, column: "tenant"), state: known,
                currentDagVersion: try row.decode(Int.self, column: "current_dag_version"))
        }
    }

    public func listWorkflows(_ query: WorkflowListQuery) async throws -> WorkflowPage {
        let pageSize = max(1, min(query.pageSize, 1000))
        let cursor = try query.pageToken.map(PageToken.decode)
        return try await context.read { session in
            // workflows_tenant_created_idx (tenant, created_at DESC, id DESC) serves a tenant's
            // newest-first keyset scan; filters on state and labels are applied to the rows it yields.
            // Lists never carry the query's graph (`query_graph_omitted`): it is not read.
            let rows = try await session.query(
                """
                SELECT \(WorkflowRow.columns(.none))
                  FROM workflows w JOIN queries q ON q.workflow_id = w.id
                 WHERE ($1::text IS NULL OR w.tenant = $1)
                   AND (cardinality($2::text[]) = 0 OR w.state = ANY($2::text[]))
                   AND w.labels @> $3::jsonb
                   AND ($4::timestamptz IS NULL OR w.created_at >= $4)
                   AND ($5::timestamptz IS NULL OR w.created_at < $5)
                   AND ($6::timestamptz IS NULL OR (w.created_at, w.id) < ($6, $7::text))
                 ORDER BY w.created_at DESC, w.id DESC
                 LIMIT $8
                """,
                [
                    query.tenant, query.states.map(\.rawValue).sorted(), try JSONColumn.object(query.labels),
                    query.createdAfter?.sqlTimestamp, query.createdBefore?.sqlTimestamp, cursor?.createdAt, cursor?.id ?? "",
                    pageSize + 1,
                ])
            let decoder = JSONDecoder()
            var workflows: [WorkflowRecord] = []
            var bytes = 0
            for row in rows.prefix(pageSize) {
                // The query (graph-free: its inputs, text, labels) is most of a listed workflow.
                let size = try row.decode([UInt8].self, column: "query").count
                if !workflows.isEmpty && bytes + size > query.maxBytes { break }
                workflows.append(try WorkflowRow.decode(row, decoder: decoder))
                bytes += size
            }
            var next: String?
            if workflows.count < rows.count {
                let last = rows[workflows.count - 1]
                next = PageToken(createdAt: try last.decode(Date.self, column: "created_at"), id: try last.decode(String.self, column: "id")).encoded
            }
            return WorkflowPage(workflows: workflows, nextPageToken: next)
        }
    }

    public func dagVersion(workflowID: String, version: Int?) async throws -> StoredDagVersion? {
        try await context.read { session in
            // dag_versions primary key (workflow_id, version).
            let rows = try await session.query(
                """
                SELECT d.workflow_id, d.version, d.graph, d.reason, d.author, d.created_at
                  FROM dag_versions d
                 WHERE d.workflow_id = $1
                   AND d.version = coalesce($2::int8, (SELECT current_dag_version FROM workflows WHERE id = $1))
                """, [workflowID, version.map(Int64.init)])
            return try rows.first.map { try DagVersionRow.decode($0, decoder: JSONDecoder()) }
        }
    }

    public func dagHistory(workflowID: String) async throws -> [DagVersionSummary] {
        try await context.read { session in
            let rows = try await session.query(
                """
                SELECT version, task_count, reason, author, created_at
                  FROM dag_versions WHERE workflow_id = $1 ORDER BY version
                """, [workflowID])
            return try rows.map { row in
                DagVersionSummary(
                    version: try row.decode(Int.self, column: "version"), taskCount: try row.decode(Int.self, column: "task_count"),
                    reason: try row.decode(String.self, column: "reason"), author: try row.decode(String.self, column: "author"),
                    createdAt: try row.decode(Date.self, column: "created_at").unixMillis)
            }
        }
    }

    public func tasks(workflowID: String) async throws -> [StoredTask] {
        try await context.read { session in
            // tasks_workflow_key_key (workflow_id, key).
            let rows = try await session.query(
                """
                SELECT \(TaskRow.columns)
                  FROM tasks t JOIN workflows w ON w.id = t.workflow_id
                 WHERE t.workflow_id = $1
                 ORDER BY t.key
                """, [workflowID])
            let decoder = JSONDecoder()
            return try rows.map { try TaskRow.decode($0, decoder: decoder) }
        }
    }
}

enum DagVersionRow {
    /// `dag_versions.graph` holds the JSON encoding of the domain `Dag` (see docs/SCHEMA.md,
    /// "Repositories": the store does not depend on the generated protobuf types).
    static func decode(_ row: PostgresRow, decoder: JSONDecoder) throws -> StoredDagVersion {
        StoredDagVersion(
            workflowID: try row.decode(String.self, column: "workflow_id"),
            version: try row.decode(Int.self, column: "version"),
            dag: try decoder.decode(Dag.self, from: Data(try row.decode([UInt8].self, column: "graph"))),
            reason: try row.decode(String.self, column: "reason"),
            author: try row.decode(String.self, column: "author"),
            createdAt: try row.decode(Date.self, column: "created_at").unixMillis)
    }
}

/// The opaque cursor of `listWorkflows`: the (created_at, id) of the last workflow of a page,
/// base64url of `micros|id`.
struct PageToken {
    var createdAt: Date
    var id: String
    /// 9999-12-31T23:59:59.999999Z.
    static let latestMicros: Int64 = 253_402_300_799_999_999

    var encoded: String {
        let micros = Int64((createdAt.timeIntervalSince1970 * 1_000_000).rounded())
        return Data("\(micros)|\(id)".utf8).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
    }

    static func decode(_ token: String) throws -> PageToken {
        let base64 = token.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        // Tokens come back from clients: a forged instant outside what a workflow can have been
        // created at (a negative one trapped in the timestamp encoding) is refused like garbage.
        guard let data = Data(base64Encoded: base64), let text = String(data: data, encoding: .utf8),
            let bar = text.firstIndex(of: "|"), let micros = Int64(text[..<bar]), (0...Self.latestMicros).contains(micros)
        else { throw StoreError.malformedPageToken }
        let id = String(text[text.index(after: bar)...])
        // Workflow ids are the server's own (`wf_` and hex): anything else, a NUL above all (which
        // PostgreSQL refuses in text, an INTERNAL error), is no token this server issued.
        guard !id.isEmpty, id.unicodeScalars.allSatisfy(isIDCharacter) else { throw StoreError.malformedPageToken }
        return PageToken(createdAt: Date(timeIntervalSince1970: Double(micros) / 1_000_000), id: id)
    }

    private static func isIDCharacter(_ scalar: Unicode.Scalar) -> Bool {
        scalar.isASCII && (scalar == "_" || scalar == "-" || scalar.properties.isAlphabetic || ("0"..."9").contains(scalar))
    }
}
