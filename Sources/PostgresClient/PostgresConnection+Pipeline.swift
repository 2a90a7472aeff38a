internal import CLibPQ

#if canImport(Glibc)
    import Glibc
#endif

/// One statement of a batch.
public struct PostgresStatement: Sendable {
    public var sql: String
    public var binds: [any PostgresEncodable]

    public init(_ sql: String, _ binds: [any PostgresEncodable] = []) {
        self.sql = sql
        self.binds = binds
    }
}

extension PostgresConnection {
    /// Runs many statements in libpq's pipeline mode: all are sent before any result is read, so a
    /// batch costs about one round trip instead of one per statement.
    ///
    /// Everything up to the pipeline's single sync point is one implicit transaction: if any
    /// statement fails, the ones after it are skipped, the batch is rolled back and the first
    /// error is thrown. (Inside an explicit transaction, the failure aborts that transaction.)
    ///
    /// The socket is switched to non-blocking while sending and input is consumed whenever the
    /// server's answers back up, so a large batch cannot deadlock with both sides' buffers full.
    /// - Returns: the rows of each statement, in order.
    public func pipeline(_ statements: [PostgresStatement]) throws -> [PostgresRows] {
        try runPipeline(count: statements.count) { index in
            let statement = statements[index]
            let parameters = ParameterBuffer(statement.binds)
            return parameters.withCArrays { count, types, values, lengths, formats in
                PQsendQueryParams(handle, statement.sql, count, types, values, lengths, formats, PostgresData.Format.binary.rawValue)
            }
        }
    }

    /// Runs one statement once per parameter row in a pipeline, preparing it once: the fast way to
    /// insert thousands of rows. See `pipeline(_:)` for the transaction semantics.
    /// - Returns: the total number of affected rows.
    @discardableResult
    public func executeBatch(_ sql: String, rows: [[any PostgresEncodable]]) throws -> Int {
        guard let first = rows.first else { return 0 }
        // An unnamed prepared statement, typed from the first row, is re-used by every row.
        let types = first.map { Oid($0.encode().type.oid) }
        let results = try runPipeline(count: rows.count + 1) { index in
            if index == 0 {
                return types.withUnsafeBufferPointer { PQsendPrepare(handle, "", sql, Int32(types.count), $0.baseAddress) }
            }
            let parameters = ParameterBuffer(rows[index - 1])
            return parameters.withCArrays { count, _, values, lengths, formats in
                PQsendQueryPrepared(handle, "", count, values, lengths, formats, PostgresData.Format.binary.rawValue)
            }
        }
        return results.dropFirst().reduce(0) { $0 + $1.affectedRows }
    }

    func runPipeline(count: Int, send: (Int) -> Int32) throws -> [PostgresRows] {
        guard count > 0 else { return [] }
        guard PQenterPipelineMode(handle) == 1 else { throw connectionError() }
        defer { PQexitPipelineMode(handle) }
        PQsetnonblocking(handle, 1)
        var sendFailure: PostgresError?
        for index in 0..<count {
            if send(index) != 1 {
                sendFailure = connectionError()
                break
            }
            // Keep the output buffer small and the input drained.
            if PQflush(handle) == 1 { try pump(untilFlushed: false) }
        }
        if sendFailure == nil, PQpipelineSync(handle) != 1 { sendFailure = connectionError() }
        if sendFailure == nil { try pump(untilFlushed: true) }
        PQsetnonblocking(handle, 0)
        if let sendFailure { throw sendFailure }

        var rows: [PostgresRows] = []
        rows.reserveCapacity(count)
        var firstError: PostgresError?
        for _ in 0..<count {
            // Each statement yields its result, then NULL.
            guard let result = PQgetResult(handle) else { throw connectionError() }
            let status = PQresultStatus(result)
            if status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK {
                rows.append(PostgresRows(result: PostgresResult(result)))
            } else {
                if firstError == nil || status != PGRES_PIPELINE_ABORTED { firstError = firstError ?? makeError(result) }
                PQclear(result)
                rows.append(PostgresRows(result: nil))
            }
            while let extra = PQgetResult(handle) { PQclear(extra) }
        }
        // Then the sync point.
        guard let sync = PQgetResult(handle) else { throw connectionError() }
        PQclear(sync)
        if let firstError { throw firstError }
        return rows
    }

    /// Waits until libpq's output buffer is flushed (or, with `untilFlushed` false, until it has
    /// room again), reading whatever the server sends meanwhile into libpq's input buffer.
    private func pump(untilFlushed: Bool) throws {
        while true {
            let flushed = PQflush(handle)
            if flushed == 0 { return }
            if flushed < 0 { throw connectionError() }
            var descriptor = pollfd(fd: socket, events: Int16(POLLIN | POLLOUT), revents: 0)
            let ready = poll(&descriptor, 1, 30_000)
            if ready < 0 && errno != EINTR { throw PostgresError.client(.connectionLost, "poll failed: errno \(errno)") }
            if ready == 0 { throw PostgresError.client(.connectionLost, "server stopped reading the pipeline for 30 s") }
            if descriptor.revents & Int16(POLLIN) != 0, PQconsumeInput(handle) != 1 { throw connectionError() }
            if !untilFlushed && descriptor.revents & Int16(POLLOUT) != 0 { return }
        }
    }
}
