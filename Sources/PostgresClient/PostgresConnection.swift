internal import CLibPQ
import Synchronization
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// One libpq connection (`PGconn`), owned by this object and closed with `PQfinish` in `deinit`.
///
/// Threading: every method blocks its calling thread until the server answers, and a `PGconn`
/// must not be used by two threads at once. So this class is confined: the pool creates each
/// connection on its own `DatabaseThread` and only ever calls it there (async callers use
/// `PostgresSession`, which hops to that thread). It is deliberately not `Sendable`.
///
/// Parameters are always bound (`PQexecParams`), never spliced into the SQL text; results are
/// requested in binary format. `simpleQuery` (the simple-query protocol, several statements, no
/// parameters) exists for migrations and fixed administrative statements.
public final class PostgresConnection {
    let handle: OpaquePointer
    /// Statement names by SQL text and parameter types (`preparedQuery`).
    var preparedStatements: [PreparedStatementKey: String] = [:]
    /// Numbers of statement names: never reused, so a name prepared by a pipeline that failed
    /// later (and so was not recorded) cannot collide with a new one.
    var lastPreparedNumber = 0

    /// Opens a connection.
    /// - Parameter conninfo: a `postgresql://` URL or a keyword/value string (`host=… dbname=…`).
    /// - Throws: `PostgresError` with `.connectionFailed`, `.cannotConnectNow` (server starting or
    ///   stopping) or `.invalidPassword`.
    public init(conninfo: String) throws {
        guard let handle = try Self.connect(conninfo) else {
            throw PostgresError.client(.connectionFailed, "out of memory allocating a PGconn")
        }
        guard PQstatus(handle) == CONNECTION_OK else {
            let message = ConninfoRedaction.redacting(Self.trimmed(PQerrorMessage(handle)), of: conninfo)
            PQfinish(handle)
            throw PostgresError(code: Self.classifyConnectFailure(message), message: message)
        }
        self.handle = handle
        PostgresNotices.route(handle)
        // Never die of SIGPIPE when the server goes away while a query is being written.
        signal(SIGPIPE, SIG_IGN)
    }

    deinit { PQfinish(handle) }

    /// Settings libpq leaves unbounded or at the operating system's defaults, applied unless
    /// `conninfo` names them itself. Without `connect_timeout` an attempt to reach a host that
    /// drops packets (a partition, a blackholing firewall) or accepts and never answers blocks its
    /// thread until TCP gives up; without keepalive settings a peer that vanished behind a
    /// half-open connection is noticed after about two hours.
    static let defaultSettings: KeyValuePairs<String, String> = [
        "connect_timeout": "5",
        "keepalives_idle": "30", "keepalives_interval": "10", "keepalives_count": "3",
    ]

    /// `PQconnectdbParams` with the defaults first and `conninfo`'s own settings after them:
    /// libpq keeps the last value given for a keyword, so whatever the string sets wins. The
    /// string is parsed here (`PQconninfoParse`) rather than expanded by libpq, which takes a
    /// string that is neither a URL nor `key=value` pairs for a database name.
    /// - Throws: `PostgresError` `.invalidArgument` naming what is wrong with the string.
    private static func connect(_ conninfo: String) throws -> OpaquePointer? {
        var parseError: UnsafeMutablePointer<CChar>?
        guard let parsed = PQconninfoParse(conninfo, &parseError) else {
            // libpq quotes the whole string in some of these messages (a URI's syntax errors),
            // password included: the message goes to logs, so the password does not. Whatever it
            // says, no retry can mend the string.
            let message = ConninfoRedaction.redacting(
                parseError.map { trimmed($0) } ?? "the connection string cannot be parsed", of: conninfo)
            if let parseError { PQfreemem(parseError) }
            throw PostgresError(code: .invalidArgument, message: message)
        }
        defer { PQconninfoFree(parsed) }
        var pairs = Array(defaultSettings).map { ($0.key, $0.value) }
        var option = parsed
        while let keyword = option.pointee.keyword {
            if let value = option.pointee.val { pairs.append((String(cString: keyword), String(cString: value))) }
            option += 1
        }
        var storage: [UnsafeMutablePointer<CChar>] = []
        defer { storage.forEach { free($0) } }
        var keywords: [UnsafePointer<CChar>?] = []
        var values: [UnsafePointer<CChar>?] = []
        for (keyword, value) in pairs {
            let k = strdup(keyword)!
            let v = strdup(value)!
            storage += [k, v]
            keywords.append(UnsafePointer(k))
            values.append(UnsafePointer(v))
        }
        keywords.append(nil)
        values.append(nil)
        return PQconnectdbParams(keywords, values, 0)
    }

    /// The value libpq uses for a connection setting (`PQconninfo`), e.g. "connect_timeout".
    func setting(_ keyword: String) -> String? {
        guard let options = PQconninfo(handle) else { return nil }
        defer { PQconninfoFree(options) }
        var option = options
        while let name = option.pointee.keyword {
            if String(cString: name) == keyword { return option.pointee.val.map { String(cString: $0) } }
            option += 1
        }
        return nil
    }

    /// Whether libpq still considers the connection usable. It turns false only after a call
    /// noticed the loss; a silently dead socket is found by the next query (or a health check).
    public var isConnected: Bool { PQstatus(handle) == CONNECTION_OK }

    public enum TransactionStatus: Sendable {
        case idle, active, inTransaction, failedTransaction, unknown
    }

    /// Where the connection stands with respect to transactions.
    public var transactionStatus: TransactionStatus {
        switch PQtransactionStatus(handle) {
        case PQTRANS_IDLE: .idle
        case PQTRANS_ACTIVE: .active
        case PQTRANS_INTRANS: .inTransaction
        case PQTRANS_INERROR: .failedTransaction
        default: .unknown
        }
    }

    /// The server's process id for this connection (what `pg_terminate_backend` takes).
    public var backendPID: Int32 { PQbackendPID(handle) }

    /// The socket, for waiting on notifications with `poll`.
    var socket: Int32 { PQsocket(handle) }

    /// Runs one statement with bound parameters and returns its rows (binary format).
    public func query(_ sql: String, _ binds: [any PostgresEncodable] = []) throws -> PostgresRows {
        let parameters = ParameterBuffer(binds)
        let result = parameters.withCArrays { count, types, values, lengths, formats in
            PQexecParams(handle, sql, count, types, values, lengths, formats, PostgresData.Format.binary.rawValue)
        }
        return try PostgresRows(result: check(result))
    }

    /// Runs one or more statements without parameters (simple-query protocol); returns the rows of
    /// the last one. For migrations and fixed statements such as `BEGIN`; never for values.
    @discardableResult
    public func simpleQuery(_ sql: String) throws -> PostgresRows {
        try PostgresRows(result: check(PQexec(handle, sql)))
    }

    /// Quotes an identifier (a channel, database or role name) for the few statements that cannot
    /// take parameters (`LISTEN`, `CREATE DATABASE`).
    public func escapeIdentifier(_ identifier: String) throws -> String {
        guard let escaped = PQescapeIdentifier(handle, identifier, identifier.utf8.count) else {
            throw PostgresError.client(.invalidArgument, Self.trimmed(PQerrorMessage(handle)))
        }
        defer { PQfreemem(escaped) }
        return String(cString: escaped)
    }

    /// A token another thread can use to cancel the statement running on this connection.
    public func makeCancelToken() -> PostgresCancelToken? {
        PQgetCancel(handle).map(PostgresCancelToken.init)
    }

    // MARK: - Results and errors

    /// Turns a finished `PGresult` into a result object, or throws the error it carries.
    func check(_ result: OpaquePointer?) throws -> PostgresResult {
        guard let result else { throw connectionError() }
        switch PQresultStatus(result) {
        case PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_EMPTY_QUERY, PGRES_PIPELINE_SYNC:
            return PostgresResult(result)
        case PGRES_COPY_IN, PGRES_COPY_OUT, PGRES_COPY_BOTH:
            PQclear(result)
            throw PostgresError.client(.protocolViolation, "statement started COPY; use copyIn for COPY FROM STDIN")
        default:
            let error = makeError(result)
            PQclear(result)
            throw error
        }
    }

    /// The error a failed result carries, classified as a lost connection when the connection
    /// itself is gone (whatever the SQLSTATE says).
    func makeError(_ result: OpaquePointer) -> PostgresError {
        func field(_ code: UInt8) -> String? {
            PQresultErrorField(result, Int32(code)).map { String(cString: $0) }
        }
        let sqlstate = field(UInt8(ascii: "C"))
        var message = field(UInt8(ascii: "M")) ?? Self.trimmed(PQresultErrorMessage(result))
        if message.isEmpty { message = Self.trimmed(PQerrorMessage(handle)) }
        var code = sqlstate.map(PostgresError.Code.init(sqlstate:)) ?? .connectionLost
        if !isConnected { code = .connectionLost }
        if sqlstate == nil && isConnected && PQresultStatus(result) == PGRES_PIPELINE_ABORTED {
            code = .protocolViolation
            message = "statement not run: an earlier statement in the pipeline failed"
        }
        return PostgresError(
            code: code, sqlstate: sqlstate, message: message,
            detail: field(UInt8(ascii: "D")), hint: field(UInt8(ascii: "H")),
            constraint: field(UInt8(ascii: "n")), table: field(UInt8(ascii: "t")),
            column: field(UInt8(ascii: "c")), severity: field(UInt8(ascii: "V")))
    }

    /// The error for a call that produced no result at all (the connection broke).
    func connectionError() -> PostgresError {
        let message = Self.trimmed(PQerrorMessage(handle))
        return PostgresError(
            code: isConnected ? .protocolViolation : .connectionLost, message: message.isEmpty ? "connection lost" : message)
    }

    static func trimmed(_ text: UnsafePointer<CChar>?) -> String {
        guard let text else { return "" }
        return String(cString: text).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    static func classifyConnectFailure(_ message: String) -> PostgresError.Code {
        // The server is there but not taking this connection now: retried within the connect
        // timeout, not taken for the database having gone away (a full max_connections too).
        if message.contains("the database system is starting up") || message.contains("the database system is shutting down")
            || message.contains("the database system is not yet accepting connections") || message.contains("too many clients already")
            || message.contains("remaining connection slots are reserved")
        {
            return .cannotConnectNow
        }
        if message.contains("password authentication failed") { return .invalidPassword }
        // Failures no retry can mend (the pool gives up on them at once instead of for its whole
        // connect timeout): the server refused the role or the database, or libpq the string.
        if message.contains("role \"") && message.contains("\" does not exist") { return .invalidPassword }
        if message.contains("database \"") && message.contains("\" does not exist") { return .invalidCatalogName }
        if message.contains("missing \"=\" after") || message.contains("invalid connection option")
            || message.contains("invalid URI") || message.contains("invalid integer value") || message.contains("invalid port number")
            || message.contains("invalid sslmode value")
        {
            return .invalidArgument
        }
        return .connectionFailed
    }
}

/// Cancels the statement running on a connection, from any thread (`PQcancel` is thread-safe).
/// Owns the `PGcancel` and frees it in `deinit`.
public final class PostgresCancelToken: @unchecked Sendable {
    private let handle: OpaquePointer

    init(_ handle: OpaquePointer) { self.handle = handle }
    deinit { PQfreeCancel(handle) }

    /// Asks the server to cancel the current statement; the statement then fails with
    /// `.queryCanceled`. Returns false when the request could not be sent. Blocks until the
    /// server answers (libpq 15's PQcancel has no timeout): see `cancelInBackground`.
    @discardableResult
    public func cancel() -> Bool {
        var buffer = [CChar](repeating: 0, count: 256)
        return PQcancel(handle, &buffer, Int32(buffer.count)) == 1
    }

    /// Requests in flight from `cancelInBackground`, across the process.
    private static let inFlight = Atomic<Int>(0)
    /// Most cancel requests waiting for their server at once.
    static let maxInFlight = 8

    /// Sends `cancel()` from a thread of its own and returns at once. A cancel request opens a
    /// new connection and waits for the server, which during a network partition is for as long
    /// as TCP keeps trying; sent from a task's cancellation handler it ran on the cancelling
    /// thread, often one of the few cooperative-pool threads, and two of those stuck froze every
    /// async task of the server (found by blackholing the database: the health loop's timed-out
    /// probe never came back). At most `maxInFlight` wait at once; beyond that the request is
    /// skipped, and the statement ends on its own or with its connection.
    ///
    /// `answered` runs once the request is answered (or failed to send), on that thread; it does
    /// not run when the request is skipped, and the result is then false.
    @discardableResult
    public func cancelInBackground(answered: (@Sendable () -> Void)? = nil) -> Bool {
        guard Self.inFlight.wrappingAdd(1, ordering: .acquiringAndReleasing).oldValue < Self.maxInFlight else {
            Self.inFlight.wrappingSubtract(1, ordering: .acquiringAndReleasing)
            return false
        }
        Thread.detachNewThread { [self] in
            cancel()
            Self.inFlight.wrappingSubtract(1, ordering: .acquiringAndReleasing)
            answered?()
        }
        return true
    }
}
