import Glibc
import Synchronization

/// An async handle on one pooled connection: each call hops to the connection's own
/// `DatabaseThread`, runs there (blocking that thread only) and resumes the caller with the result.
///
/// A session is lent to one caller at a time by `PostgresPool.withConnection`; it must not be used
/// after the closure it was lent to returns. Cancelling the calling task sends a cancel request
/// to the server, so a long statement fails promptly with `.queryCanceled`.
public final class PostgresSession: Sendable {
    let thread: DatabaseThread
    let connection: Confined<PostgresConnection>
    let cancelToken: PostgresCancelToken?
    /// Cancel requests still travelling: the connection runs nothing until they are answered.
    let pendingCancels = PendingCancels()
    /// A number for logs, unique within the process.
    public let id: Int
    /// The server process serving this connection.
    public let backendPID: Int32
    /// The connection's socket, for `idleSocketStirred` (read only through `poll`, never read from
    /// outside the connection's thread).
    let socket: Int32
    let callFinished: (@Sendable (Duration, Bool) -> Void)?

    private init(id: Int, thread: DatabaseThread, opened: Opened, instrumentation: PostgresInstrumentation) {
        self.id = id
        self.callFinished = instrumentation.callFinished
        self.thread = thread
        self.connection = opened.connection
        self.cancelToken = opened.cancelToken
        self.backendPID = opened.backendPID
        self.socket = opened.socket
    }

    /// What the connection's thread hands back after connecting.
    private struct Opened: Sendable {
        let connection: Confined<PostgresConnection>
        let cancelToken: PostgresCancelToken?
        let backendPID: Int32
        let socket: Int32
    }

    /// Opens a connection on a new thread of its own (connecting, like everything else on the
    /// connection, happens on that thread).
    static func open(
        id: Int, conninfo: String, instrumentation: PostgresInstrumentation = .init(), idleInTransactionTimeout: Duration? = nil,
        settings: [PostgresSetting] = []
    ) async throws -> PostgresSession {
        let thread = DatabaseThread(name: "postgres-\(id)")
        var statements = settings.map { "SET \($0.name) = \($0.value)" }
        if let timeout = idleInTransactionTimeout {
            let milliseconds = max(1, Int(timeout.components.seconds) * 1000 + Int(timeout.components.attoseconds / 1_000_000_000_000_000))
            statements.append("SET idle_in_transaction_session_timeout = \(milliseconds)")
        }
        let setup = statements.joined(separator: "; ")
        do {
            let opened = try await thread.run {
                let connection = try PostgresConnection(conninfo: conninfo)
                if !setup.isEmpty { _ = try connection.simpleQuery(setup) }
                return Opened(
                    connection: Confined(connection), cancelToken: connection.makeCancelToken(), backendPID: connection.backendPID,
                    socket: connection.socket)
            }
            return PostgresSession(id: id, thread: thread, opened: opened, instrumentation: instrumentation)
        } catch {
            thread.shutdown()
            throw error
        }
    }

    /// Runs `body` with the blocking connection on its thread: for sequences of calls that
    /// should not pay a thread hop each (batches, COPY).
    public func withBlockingConnection<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) throws -> T) async throws -> T {
        guard let callFinished else { return try await runBlocking(body) }
        let started = ContinuousClock.now
        do {
            let value = try await runBlocking(body)
            callFinished(ContinuousClock.now - started, false)
            return value
        } catch {
            callFinished(ContinuousClock.now - started, true)
            throw error
        }
    }

    private func runBlocking<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) throws -> T) async throws -> T {
        let connection = self.connection
        let token = cancelToken
        let pending = pendingCancels
        // Set by a cancellation that arrives before the job starts on the thread, when a cancel
        // request would reach an idle server and be ignored.
        let cancelled = Atomic<Bool>(false)
        return try await withTaskCancellationHandler {
            try await thread.run {
                if cancelled.load(ordering: .acquiring) { throw CancellationError() }
                // A cancel request meant for an earlier statement of this borrower must not land on this one.
                guard pending.waitUntilAnswered() else {
                    throw PostgresError.client(.connectionFailed, "a cancel request to the server went unanswered")
                }
                guard let value = connection.value else { throw PostgresError.client(.poolClosed, "connection closed") }
                return try body(value)
            }
        } onCancel: {
            cancelled.store(true, ordering: .releasing)
            // Never on this thread: it blocks until the server answers (PostgresCancelToken).
            guard let token else { return }
            pending.begin()
            if !token.cancelInBackground(answered: { pending.end() }) { pending.end() }
        }
    }

    /// Runs one statement with bound parameters.
    @discardableResult
    public func query(_ sql: String, _ binds: [any PostgresEncodable] = []) async throws -> PostgresRows {
        try await withBlockingConnection { try $0.query(sql, binds) }
    }

    /// Runs one statement with bound parameters, prepared on first use on this connection (for
    /// constant statements run often; see `PostgresConnection.preparedQuery`).
    @discardableResult
    public func preparedQuery(_ sql: String, _ binds: [any PostgresEncodable] = []) async throws -> PostgresRows {
        try await withBlockingConnection { try $0.preparedQuery(sql, binds) }
    }

    /// Runs fixed statements without parameters (simple-query protocol).
    @discardableResult
    public func simpleQuery(_ sql: String) async throws -> PostgresRows {
        try await withBlockingConnection { try $0.simpleQuery(sql) }
    }

    /// Whether an idle connection's socket has something to read or was closed: the server sent
    /// what an idle connection is never sent unasked — most often its last words before closing
    /// it (`pg_terminate_backend`, a restart, `idle_session_timeout`). One `poll` that does not
    /// wait; the pool then pings before lending the connection, instead of its borrower meeting
    /// "connection lost" (found by black-box testing: the next one or two calls after the
    /// server's connections were terminated were UNAVAILABLE).
    func idleSocketStirred() -> Bool {
        guard socket >= 0 else { return true }
        let peerClosed: Int16 = 0x2000  // POLLRDHUP (Linux; Glibc exports it only under _GNU_SOURCE)
        var entry = pollfd(fd: socket, events: Int16(POLLIN) | peerClosed, revents: 0)
        return poll(&entry, 1, 0) != 0
    }

    /// Whether the connection answers a trivial query.
    func ping() async -> Bool {
        (try? await withBlockingConnection { try $0.simpleQuery("SELECT 1").count == 1 }) ?? false
    }

    /// Prepares the connection for the next borrower: rolls back a transaction left open by a
    /// caller that threw. Returns false when the connection is unusable.
    func resetForReuse() async -> Bool {
        let outcome = try? await thread.run { [connection, pendingCancels] () -> Bool in
            // The next borrower's statements must not meet a cancel request sent for this one's.
            guard pendingCancels.waitUntilAnswered() else { return false }
            guard let value = connection.value, value.isConnected else { return false }
            switch value.transactionStatus {
            case .idle: return true
            case .inTransaction, .failedTransaction:
                _ = try? value.simpleQuery("ROLLBACK")
                return value.isConnected && value.transactionStatus == .idle
            case .active, .unknown: return false
            }
        }
        return outcome ?? false
    }

    /// Closes the connection on its own thread, then lets the thread end.
    func close() {
        let connection = self.connection
        thread.enqueue { connection.value = nil }
        thread.shutdown()
    }
}

/// A value reachable from several tasks but used only on one `DatabaseThread`.
///
/// `@unchecked Sendable` because the guard is confinement, not a lock: every read and write of
/// `value` happens inside a job on the owning `DatabaseThread` (jobs run one at a time); the box
/// itself is created on that thread too.
final class Confined<Value>: @unchecked Sendable {
    var value: Value?
    init(_ value: Value) { self.value = value }
}
