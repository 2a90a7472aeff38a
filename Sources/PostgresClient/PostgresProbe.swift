/// A connection of its own for health checks, outside the pool: whether the database answers
/// must not depend on whether the pool has a connection free. Probing through the pool, a server
/// whose 16 connections were all busy (a loaded machine, lock waits) waited past the probe's
/// timeout and went NOT_SERVING for seconds with its database answering (found by black-box
/// testing: a 29-minute soak flipped health once).
///
/// One query runs at a time, and callers asking while it runs share its answer: a database that
/// does not answer holds one query, not one per probe (callers bound their wait themselves). A
/// failed query closes the connection; the next one opens a new one.
public actor PostgresProbe {
    private let conninfo: String
    private var session: PostgresSession?
    private var inFlight: Task<Int64?, Never>?

    public init(conninfo: String) {
        self.conninfo = conninfo
    }

    /// The first column of the first row of `sql` (an integer), or nil when the database could
    /// not be reached or the query failed.
    public func integer(_ sql: String) async -> Int64? {
        if let inFlight { return await inFlight.value }
        let task = Task { await self.run(sql) }
        inFlight = task
        let value = await task.value
        inFlight = nil
        return value
    }

    private func run(_ sql: String) async -> Int64? {
        do {
            let session: PostgresSession
            if let open = self.session {
                session = open
            } else {
                session = try await PostgresSession.open(id: -1, conninfo: conninfo)
                self.session = session
            }
            return try await session.query(sql).first?.decode(Int64.self, at: 0)
        } catch {
            session?.close()
            session = nil
            return nil
        }
    }

    public func close() {
        session?.close()
        session = nil
    }
}
