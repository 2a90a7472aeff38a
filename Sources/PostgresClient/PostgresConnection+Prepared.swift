internal import CLibPQ

/// Prepared statements: a statement run often is parsed and planned once per connection
/// (`PQprepare`) and then only executed (`PQexecPrepared`), so each run skips parse, analysis and
/// — once PostgreSQL settles on a generic plan after five runs — planning, which for the store's
/// big batch statements costs more than executing them on small batches.
///
/// Statements are keyed by SQL text and parameter types, named `orch_s<n>` per connection, and
/// never deallocated: the store's statements are a fixed set of constants. The cache is bounded
/// all the same; past `preparedStatementLimit` statements run unprepared. Prepared statements
/// outlive transactions (a rollback keeps them) and go with the connection.
extension PostgresConnection {
    /// Most statements one connection prepares.
    static let preparedStatementLimit = 256

    /// Runs one statement like `query`, prepared on first use on this connection.
    public func preparedQuery(_ sql: String, _ binds: [any PostgresEncodable] = []) throws -> PostgresRows {
        let parameters = ParameterBuffer(binds)
        let key = PreparedStatementKey(sql: sql, types: parameters.types)
        let name: String
        if let known = preparedStatements[key] {
            name = known
        } else {
            guard preparedStatements.count < Self.preparedStatementLimit else { return try query(sql, binds) }
            name = nextPreparedName()
            let prepared = parameters.withCArrays { count, types, _, _, _ in PQprepare(handle, name, sql, count, types) }
            _ = try check(prepared)
            preparedStatements[key] = name
        }
        let result = parameters.withCArrays { count, _, values, lengths, formats in
            PQexecPrepared(handle, name, count, values, lengths, formats, PostgresData.Format.binary.rawValue)
        }
        return try PostgresRows(result: check(result))
    }

    /// Runs `prefix` (fixed statements without parameters, such as BEGIN), then `statements`
    /// (prepared on first use, like `preparedQuery`), then `suffix` (fixed, such as COMMIT) in one
    /// pipeline: one round trip. See `pipeline(_:)` for what a failure does.
    /// - Returns: the rows of each of `statements`, then of each of `suffix`, in order.
    public func preparedPipeline(_ statements: [PostgresStatement], prefix: [String] = [], suffix: [String] = []) throws -> [PostgresRows] {
        enum Command {
            case fixed(String)
            case prepare(name: String, sql: String, parameters: ParameterBuffer)
            case execute(name: String, parameters: ParameterBuffer)
            case unprepared(String, ParameterBuffer)
        }
        var commands = prefix.map(Command.fixed)
        var resultIndexes: [Int] = []
        var newNames: [PreparedStatementKey: String] = [:]
        for statement in statements {
            let parameters = ParameterBuffer(statement.binds)
            let key = PreparedStatementKey(sql: statement.sql, types: parameters.types)
            if let name = preparedStatements[key] ?? newNames[key] {
                commands.append(.execute(name: name, parameters: parameters))
            } else if preparedStatements.count + newNames.count < Self.preparedStatementLimit {
                let name = nextPreparedName()
                newNames[key] = name
                commands.append(.prepare(name: name, sql: statement.sql, parameters: parameters))
                commands.append(.execute(name: name, parameters: parameters))
            } else {
                commands.append(.unprepared(statement.sql, parameters))
            }
            resultIndexes.append(commands.count - 1)
        }
        for sql in suffix {
            commands.append(.fixed(sql))
            resultIndexes.append(commands.count - 1)
        }
        let binary = PostgresData.Format.binary.rawValue
        let rows = try runPipeline(count: commands.count) { index in
            switch commands[index] {
            case .fixed(let sql):
                return PQsendQueryParams(handle, sql, 0, nil, nil, nil, nil, binary)
            case .prepare(let name, let sql, let parameters):
                return parameters.withCArrays { count, types, _, _, _ in PQsendPrepare(handle, name, sql, count, types) }
            case .execute(let name, let parameters):
                return parameters.withCArrays { count, _, values, lengths, formats in
                    PQsendQueryPrepared(handle, name, count, values, lengths, formats, binary)
                }
            case .unprepared(let sql, let parameters):
                return parameters.withCArrays { count, types, values, lengths, formats in
                    PQsendQueryParams(handle, sql, count, types, values, lengths, formats, binary)
                }
            }
        }
        // Only a pipeline that went through proves its statements prepared.
        preparedStatements.merge(newNames) { old, _ in old }
        return resultIndexes.map { rows[$0] }
    }

    private func nextPreparedName() -> String {
        lastPreparedNumber += 1
        return "orch_s\(lastPreparedNumber)"
    }

    /// How many statements this connection has prepared (tests).
    var preparedStatementCount: Int { preparedStatements.count }
}

struct PreparedStatementKey: Hashable {
    var sql: String
    var types: [Oid]
}
