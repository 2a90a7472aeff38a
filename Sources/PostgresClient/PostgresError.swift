/// An error from PostgreSQL or from this client, translated once at the libpq boundary.
///
/// Server errors carry the SQLSTATE and the fields PostgreSQL sends with it (detail, hint,
/// constraint, table, column); `code` classifies the SQLSTATE so callers can `switch` on the cases
/// they handle (a unique violation becomes ALREADY_EXISTS upstream, a serialization failure is
/// retried, a lost connection becomes UNAVAILABLE). Client-side failures (the connection could not
/// be opened, a column did not decode) have a `code` too and no SQLSTATE.
public struct PostgresError: Error, Sendable, CustomStringConvertible {
    public enum Code: Hashable, Sendable {
        // Server errors, by SQLSTATE.
        case uniqueViolation  // 23505
        case foreignKeyViolation  // 23503
        case checkViolation  // 23514
        case notNullViolation  // 23502
        case exclusionViolation  // 23P01
        case serializationFailure  // 40001
        case deadlockDetected  // 40P01
        case lockNotAvailable  // 55P03
        case queryCanceled  // 57014 (statement_timeout, cancel request)
        case syntaxError  // 42601
        case undefinedTable  // 42P01
        case undefinedColumn  // 42703
        case undefinedFunction  // 42883
        case duplicateObject  // 42710 / 42P07 (relation) / 42P04 (database)
        case invalidTextRepresentation  // 22P02
        case dataException  // other class 22
        case insufficientPrivilege  // 42501
        case invalidPassword  // 28P01 / 28000 (a role that does not exist, too)
        case invalidCatalogName  // 3D000: the database named does not exist
        case cannotConnectNow  // 57P03: the server is starting up or shutting down; 53300: it has no connection slot free
        case connectionLost  // class 08, 57P01/57P02 (server shut down), or the socket died
        case otherServerError(String)  // any other SQLSTATE
        // Client errors.
        case connectionFailed  // could not open a connection
        case decoding  // a value did not decode into the requested Swift type
        case poolTimeout  // no connection became free in time
        case poolClosed  // the pool or the connection was shut down
        case protocolViolation  // libpq returned something this client did not expect
        case invalidArgument  // a bad argument to this client (e.g. an empty channel name)
        /// The connection was lost while COMMIT was in flight: the transaction may or may not
        /// have committed. Never retried automatically.
        case commitOutcomeUnknown

        /// Maps a five-character SQLSTATE to a code.
        public init(sqlstate: String) {
            switch sqlstate {
            case "23505": self = .uniqueViolation
            case "23503": self = .foreignKeyViolation
            case "23514": self = .checkViolation
            case "23502": self = .notNullViolation
            case "23P01": self = .exclusionViolation
            case "40001": self = .serializationFailure
            case "40P01": self = .deadlockDetected
            case "55P03": self = .lockNotAvailable
            case "57014": self = .queryCanceled
            case "42601": self = .syntaxError
            case "42P01": self = .undefinedTable
            case "42703": self = .undefinedColumn
            case "42883": self = .undefinedFunction
            case "42710", "42P07", "42P04", "42P06": self = .duplicateObject
            case "22P02": self = .invalidTextRepresentation
            case "42501": self = .insufficientPrivilege
            case "28P01", "28000": self = .invalidPassword
            case "3D000": self = .invalidCatalogName
            case "57P03", "53300": self = .cannotConnectNow
            case "57P01", "57P02": self = .connectionLost
            default:
                if sqlstate.hasPrefix("08") {
                    self = .connectionLost
                } else if sqlstate.hasPrefix("22") {
                    self = .dataException
                } else {
                    self = .otherServerError(sqlstate)
                }
            }
        }
    }

    public var code: Code
    /// The five-character SQLSTATE for server errors; nil for client errors and for a connection
    /// that died without the server saying why.
    public var sqlstate: String?
    /// The primary message (PostgreSQL's, or this client's).
    public var message: String
    public var detail: String?
    public var hint: String?
    /// The violated constraint's name, for integrity violations.
    public var constraint: String?
    public var table: String?
    public var column: String?
    /// ERROR, FATAL or PANIC for server errors.
    public var severity: String?

    public init(
        code: Code, sqlstate: String? = nil, message: String, detail: String? = nil, hint: String? = nil,
        constraint: String? = nil, table: String? = nil, column: String? = nil, severity: String? = nil
    ) {
        self.code = code
        self.sqlstate = sqlstate
        self.message = message
        self.detail = detail
        self.hint = hint
        self.constraint = constraint
        self.table = table
        self.column = column
        self.severity = severity
    }

    static func client(_ code: Code, _ message: String) -> PostgresError {
        PostgresError(code: code, message: message)
    }

    /// Whether running the same transaction again may succeed: the server aborted it to keep
    /// concurrent transactions consistent, not because of what it did.
    public var isTransient: Bool {
        code == .serializationFailure || code == .deadlockDetected
    }

    /// Whether the connection that produced this error is unusable and must be replaced.
    public var isConnectionLoss: Bool {
        code == .connectionLost || code == .connectionFailed || code == .cannotConnectNow || code == .commitOutcomeUnknown
    }

    public var description: String {
        var text = "PostgresError(\(code)"
        if let sqlstate { text += " \(sqlstate)" }
        text += "): \(message)"
        if let detail { text += " — \(detail)" }
        if let constraint { text += " [constraint \(constraint)]" }
        return text
    }
}
