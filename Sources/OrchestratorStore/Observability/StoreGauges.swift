import PostgresClient

/// Database-wide counts for the metrics endpoint: ready tasks by capability, tasks holding a
/// lease or waiting out a retry backoff, and workflows by state. Read on scrape (and cached by
/// the caller), so they are the same whichever server is scraped.
public struct StoreGauges: Sendable {
    public struct Snapshot: Sendable, Equatable {
        /// Ready tasks by required capability; a task needing several is counted under each, a
        /// task needing none under "". At most `maxCapabilities` entries: the ones with the most
        /// ready tasks, the rest summed under `otherCapabilities`.
        public var readyByCapability: [String: Int] = [:]
        /// Tasks in `leased`, `running` and `retry_wait`.
        public var tasksByState: [String: Int] = [:]
        /// Workflows in each state (planning, running, succeeded, failed, cancelled).
        public var workflowsByState: [String: Int] = [:]

        public init() {}
    }

    /// Ready tasks per capability. Indexes: those of the ready queue (partial, state = 'ready';
    /// tasks_claim_idx and, since 0014, two more): the scan touches ready tasks only, so its cost
    /// follows the queue's depth, not the table's size.
    static let readyByCapability = """
        SELECT coalesce(c.capability, '') AS capability, count(*) AS tasks
          FROM tasks t
          LEFT JOIN LATERAL unnest(t.required_capabilities) AS c(capability) ON true
         WHERE t.state = 'ready'
         GROUP BY 1
        """

    /// Index: tasks_lease_expiry_idx (leased, running) and tasks_retry_due_idx (retry_wait), both partial.
    static let busyTasks = """
        SELECT state, count(*) AS tasks FROM tasks WHERE state IN ('leased', 'running') GROUP BY state
        UNION ALL
        SELECT 'retry_wait', count(*) FROM tasks WHERE state = 'retry_wait'
        """

    /// A sequential scan of `workflows` (one narrow row per workflow): fine at a scrape every
    /// few seconds for hundreds of thousands of workflows; the caller caches it.
    static let workflowsByState = "SELECT state, count(*) AS workflows FROM workflows GROUP BY state"

    /// Capabilities are the submitters' strings: one SubmitQuery with 10,000 distinct ones made
    /// 10,000 metric series (a 1.6 MB scrape, 20 times slower; found by black-box testing).
    public static let maxCapabilities = 100
    public static let otherCapabilities = "(other capabilities)"

    /// `counts` with at most `limit` entries: the largest (ties by name), the rest summed under
    /// `otherCapabilities`.
    static func bounded(_ counts: [String: Int], limit: Int = maxCapabilities) -> [String: Int] {
        guard counts.count > limit else { return counts }
        let ordered = counts.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
        var kept = Dictionary(uniqueKeysWithValues: ordered.prefix(limit).map { ($0.key, $0.value) })
        kept[otherCapabilities, default: 0] += ordered.dropFirst(limit).reduce(0) { $0 + $1.value }
        return kept
    }

    let pool: PostgresPool

    public init(pool: PostgresPool) {
        self.pool = pool
    }

    public func read() async throws -> Snapshot {
        try await pool.withConnection { session in
            var snapshot = Snapshot()
            for row in try await session.query(Self.readyByCapability) {
                snapshot.readyByCapability[try row.decode(String.self, column: "capability")] = try row.decode(Int.self, column: "tasks")
            }
            snapshot.readyByCapability = Self.bounded(snapshot.readyByCapability)
            for row in try await session.query(Self.busyTasks) {
                snapshot.tasksByState[try row.decode(String.self, column: "state")] = try row.decode(Int.self, column: "tasks")
            }
            for row in try await session.query(Self.workflowsByState) {
                snapshot.workflowsByState[try row.decode(String.self, column: "state")] = try row.decode(Int.self, column: "workflows")
            }
            return snapshot
        }
    }
}
