/// A transaction that saves round trips: its BEGIN travels with its first statement, statements
/// whose results nobody reads (`queue`) travel with the next statement or with COMMIT, and every
/// statement is prepared on first use on its connection. A transaction of BEGIN, three queries, one
/// queued append and COMMIT costs three round trips instead of six.
///
/// Same guarantees as `PostgresPool.withTransaction`: any error rolls everything back (a queued
/// statement's error surfaces from the call that sent it, at the latest from the commit), and a
/// connection lost while COMMIT may have been sent is `.commitOutcomeUnknown`. Used only inside
/// the closure it was made for.
public final class PostgresPipelinedTransaction {
    let session: PostgresSession
    /// BEGIN and SET LOCAL, until they are sent.
    private var begin: [String]?
    private var queued: [PostgresStatement] = []

    init(session: PostgresSession, begin: [String]) {
        self.session = session
        self.begin = begin
    }

    /// Runs one statement (with the BEGIN and queued statements not sent yet) and returns its rows.
    @discardableResult
    public func query(_ sql: String, _ binds: [any PostgresEncodable] = []) async throws -> PostgresRows {
        guard begin == nil && queued.isEmpty else { return try await queries([PostgresStatement(sql, binds)])[0] }
        return try await session.preparedQuery(sql, binds)
    }

    /// Runs statements that do not need each other's results in one round trip (with the BEGIN
    /// and queued statements not sent yet), in order; returns the rows of each.
    public func queries(_ statements: [PostgresStatement]) async throws -> [PostgresRows] {
        let prefix = begin ?? []
        begin = nil
        let all = queued + statements
        let skipped = queued.count
        queued = []
        let rows = try await session.withBlockingConnection { try $0.preparedPipeline(all, prefix: prefix) }
        return Array(rows[skipped...])
    }

    /// Sends `sql` with the next statement or with COMMIT; its rows are not read.
    public func queue(_ sql: String, _ binds: [any PostgresEncodable] = []) {
        queued.append(PostgresStatement(sql, binds))
    }

    /// Sends what is left with COMMIT. A transaction that sent nothing sends nothing.
    func commit() async throws {
        guard !(begin != nil && queued.isEmpty) else { return }
        let prefix = begin ?? []
        begin = nil
        let statements = queued
        queued = []
        let committed: PostgresRows
        do {
            committed = try await session.withBlockingConnection { connection in
                try connection.preparedPipeline(statements, prefix: prefix, suffix: ["COMMIT"]).last!
            }
        } catch var error as PostgresError where error.code == .connectionLost {
            error.code = .commitOutcomeUnknown
            error.message = "connection lost during COMMIT; the transaction may or may not have committed: \(error.message)"
            throw error
        }
        if committed.commandTag == "ROLLBACK" {
            throw PostgresError.client(.protocolViolation, "the transaction had failed and was rolled back at COMMIT")
        }
    }
}

extension PostgresPool {
    /// Runs `body` in a pipelined transaction (see `PostgresPipelinedTransaction`) and commits it,
    /// retrying like `withTransaction`.
    @discardableResult
    public func withPipelinedTransaction<T>(
        isolation: PostgresIsolation = .readCommitted, retry: PostgresRetryPolicy = .default,
        settings: [PostgresSetting] = [], _ body: (PostgresPipelinedTransaction) async throws -> T
    ) async throws -> T {
        try await retryingTransaction(isolation: isolation, retry: retry) { session in
            let transaction = PostgresPipelinedTransaction(
                session: session, begin: PostgresSession.beginStatements(isolation: isolation, settings: settings))
            do {
                let value = try await body(transaction)
                try await transaction.commit()
                return value
            } catch {
                await session.rollBackIfOpen()
                throw error
            }
        }
    }
}
