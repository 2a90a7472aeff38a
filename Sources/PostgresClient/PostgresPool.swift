import Logging
import Synchronization

/// A bounded pool of PostgreSQL connections for async callers.
///
/// Each connection lives on a `DatabaseThread` of its own, so blocking libpq calls never run on
/// the Swift cooperative pool or on an I/O thread. Callers borrow a connection with
/// `withConnection` or `withTransaction`; when all `maxConnections` are lent out, callers wait
/// (in FIFO order, up to `acquireTimeout`).
///
/// Failure handling: a connection that reports a lost connection is discarded, and every idle
/// connection is then health-checked (`SELECT 1`) before it is lent again, so after a server
/// restart the pool drops dead sockets and reconnects (retrying with backoff while the server
/// comes back). A connection returned inside an open transaction is rolled back first.
/// Connections idle longer than `idleTimeout` are closed as others are returned.
///
/// Outages: once a connection has opened, an attempt that fails outright (refused, timed out)
/// makes the pool count the database unreachable — before that (the database may still be
/// starting), or while the server answers "starting up" or "shutting down", only after a whole
/// `connectTimeout` of retries. While unreachable, callers that need a new connection make one
/// attempt (one caller at a time; the others fail without one) instead of each retrying for the
/// whole timeout (during an outage every call took ~15 s to fail, longer than many clients'
/// deadlines, which then saw DEADLINE_EXCEEDED instead of UNAVAILABLE). The first connection
/// opened again ends that.
///
/// Threading: the pool's bookkeeping is guarded by `state`'s mutex; continuations are resumed
/// after the lock is released.
public final class PostgresPool: Sendable {
    public let configuration: PostgresPoolConfiguration
    let logger: Logger
    /// `logger` without the task's context metadata, for the pool's own state changes (the
    /// database went away, came back): they happen to be noticed inside some call, whose trace id
    /// the process's metadata provider would attach, but belong to no call (found by black-box
    /// testing: "database reachable again" carried a random RPC's trace id).
    let stateLogger: Logger
    private let state: Mutex<State>

    private struct Idle {
        let session: PostgresSession
        let since: ContinuousClock.Instant
        let generation: Int
    }

    /// What a waiting caller is handed.
    private enum Ticket {
        case session(PostgresSession, needsCheck: Bool)
        case open
    }

    private struct State {
        var idle: [Idle] = []
        var open = 0
        var lent = 0
        /// Of `open` (and `lent`): slots whose connection is still being opened (connecting, or
        /// retrying while the server refuses), not yet a session.
        var opening = 0
        var waiters: [(id: Int, continuation: CheckedContinuation<Ticket, any Error>)] = []
        var nextID = 0
        /// Bumped whenever a connection is found dead: idle connections from an older
        /// generation are checked before reuse.
        var failureGeneration = 0
        var closed = false
        var peakLent = 0
        /// The last connection failure, once opening a connection failed for a whole
        /// `connectTimeout`; cleared by the next connection opened.
        var unreachable: PostgresError?
        /// While unreachable, one caller at a time tries to connect; the others fail at once.
        var probing = false
        /// Whether a connection ever opened: before that the database may still be starting
        /// (a server started before its database), and connecting is retried for the whole
        /// `connectTimeout`.
        var everConnected = false
    }

    public init(configuration: PostgresPoolConfiguration, logger: Logger = Logger(label: "postgres.pool")) {
        self.configuration = configuration
        self.logger = logger
        stateLogger = Logger(label: logger.label, metadataProvider: Logger.MetadataProvider { [:] })
        self.state = Mutex(State())
    }

    deinit { close() }

    /// Connections currently open, currently lent, and the most lent at once so far. A slot whose
    /// connection is still being opened counts in `open` and `lent`; see `openingCount`.
    public var statistics: (open: Int, lent: Int, peakLent: Int) {
        state.withLock { ($0.open, $0.lent, $0.peakLent) }
    }

    /// Slots whose connection is being opened (connecting, or retrying while the server refuses
    /// it): counted as lent in `statistics`, but no server session exists yet. A pool of 30 on a
    /// server allowing 12 showed 30 "in use" against 12 backends (found by black-box testing).
    public var openingCount: Int {
        state.withLock { $0.opening }
    }

    /// Callers waiting for a connection right now.
    public var waiterCount: Int { state.withLock { $0.waiters.count } }

    /// Borrows a connection for the duration of `body`.
    /// - Throws: whatever `body` throws; `PostgresError` `.poolTimeout`, `.poolClosed`, or the
    ///   connection error when no connection could be opened.
    @discardableResult
    public func withConnection<T>(_ body: (PostgresSession) async throws -> T) async throws -> T {
        let asked = ContinuousClock.now
        let session = try await acquire()
        configuration.instrumentation.connectionAcquired?(ContinuousClock.now - asked)
        let result: T
        do {
            result = try await body(session)
        } catch {
            await release(session, after: error)
            throw error
        }
        await release(session, after: nil)
        return result
    }

    /// Closes idle connections and refuses new borrowers; lent connections close when returned.
    public func close() {
        let (idle, waiters) = state.withLock { state -> ([Idle], [CheckedContinuation<Ticket, any Error>]) in
            state.closed = true
            let idle = state.idle
            state.open -= idle.count
            state.idle.removeAll()
            let waiters = state.waiters.map(\.continuation)
            state.waiters.removeAll()
            return (idle, waiters)
        }
        for entry in idle { entry.session.close() }
        for waiter in waiters { waiter.resume(throwing: PostgresError.client(.poolClosed, "the pool was closed")) }
    }

    // MARK: - Acquire and release

    private func acquire() async throws -> PostgresSession {
        while true {
            switch try await takeTicket() {
            case .session(let session, let needsCheck):
                if !needsCheck && !session.idleSocketStirred() {
                    return session
                }
                if await session.ping() {
                    return session
                }
                logger.debug("discarding a dead idle connection", metadata: ["session": "\(session.id)"])
                discard(session, dead: true)
            case .open:
                state.withLock { $0.opening += 1 }
                do {
                    let session = try await openWithRetry()
                    state.withLock { $0.opening -= 1 }
                    return session
                } catch {
                    state.withLock { $0.opening -= 1 }
                    openFailed()
                    throw error
                }
            }
        }
    }

    private func takeTicket() async throws -> Ticket {
        let now = ContinuousClock.now
        let immediate = try state.withLock { state -> Ticket? in
            if state.closed { throw PostgresError.client(.poolClosed, "the pool was closed") }
            if let entry = state.idle.popLast() {
                state.lent += 1
                state.peakLent = max(state.peakLent, state.lent)
                let stale = now - entry.since > configuration.healthCheckAfterIdle || entry.generation < state.failureGeneration
                return .session(entry.session, needsCheck: stale)
            }
            if state.open < configuration.maxConnections {
                state.open += 1
                state.lent += 1
                state.peakLent = max(state.peakLent, state.lent)
                return .open
            }
            return nil
        }
        if let immediate { return immediate }
        return try await waitForTicket()
    }

    private func waitForTicket() async throws -> Ticket {
        let id = state.withLock { state -> Int in
            state.nextID += 1
            return state.nextID
        }
        let timeout = configuration.acquireTimeout
        let timer = Task { [weak self] in
            try await Task.sleep(for: timeout)
            self?.cancelWaiter(id, PostgresError.client(.poolTimeout, "no connection became free within \(timeout)"))
        }
        defer { timer.cancel() }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                let closed = state.withLock { state -> Bool in
                    if state.closed { return true }
                    state.waiters.append((id, continuation))
                    return false
                }
                if closed { continuation.resume(throwing: PostgresError.client(.poolClosed, "the pool was closed")) }
            }
        } onCancel: {
            cancelWaiter(id, CancellationError())
        }
    }

    private func cancelWaiter(_ id: Int, _ error: any Error) {
        let continuation = state.withLock { state -> CheckedContinuation<Ticket, any Error>? in
            guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
            return state.waiters.remove(at: index).continuation
        }
        continuation?.resume(throwing: error)
    }

    /// Opens a connection, retrying with backoff while the server is unreachable or starting —
    /// unless the pool already counts it unreachable: then one attempt, by one caller at a time
    /// (an attempt on a host that drops packets lasts libpq's whole `connect_timeout`).
    private func openWithRetry() async throws -> PostgresSession {
        let deadline = ContinuousClock.now + configuration.connectTimeout
        let (failFast, refusal) = state.withLock { state -> (Bool, PostgresError?) in
            guard let error = state.unreachable else { return (false, nil) }
            if state.probing { return (true, error) }
            state.probing = true
            return (true, nil)
        }
        if let refusal { throw refusal }
        defer { if failFast { state.withLock { $0.probing = false } } }
        var attempt = 0
        while true {
            attempt += 1
            let id = state.withLock { state -> Int in
                state.nextID += 1
                return state.nextID
            }
            do {
                let session = try await PostgresSession.open(
                    id: id, conninfo: configuration.conninfo, instrumentation: configuration.instrumentation,
                    idleInTransactionTimeout: configuration.idleInTransactionTimeout, settings: configuration.sessionSettings)
                configuration.instrumentation.connectAttempted?(false)
                let recovered = state.withLock { state -> Bool in
                    defer {
                        state.unreachable = nil
                        state.everConnected = true
                    }
                    return state.unreachable != nil
                }
                if recovered { stateLogger.notice("database reachable again") }
                return session
            } catch let error as PostgresError where error.isConnectionLoss {
                configuration.instrumentation.connectAttempted?(true)
                let delay = configuration.connectBackoff.delay(attempt: attempt, random: Double.random(in: 0...1))
                // Once connected, a refused or timed-out attempt means the database went away:
                // callers learn it now, not after the whole connectTimeout (they waited ~15 s
                // each, past many clients' deadlines). A server restarting ("starting up",
                // "shutting down") is still waited for, within the timeout.
                let wentAway = error.code == .connectionFailed && state.withLock { $0.everConnected }
                if failFast || wentAway || ContinuousClock.now + delay > deadline {
                    let newly = state.withLock { state -> Bool in
                        defer { state.unreachable = error }
                        return state.unreachable == nil
                    }
                    if newly {
                        stateLogger.error(
                            "database unreachable; calls needing a new connection fail at once until one opens",
                            metadata: ["attempts": "\(attempt)", "error": "\(error.message)"])
                    }
                    throw error
                }
                // Warning from the fifth attempt on: an operator running at --log-level warning
                // otherwise saw nothing while a wrong or unreachable database kept the server waiting.
                let level: Logger.Level = attempt >= 5 ? .warning : .info
                logger.log(level: level, "connection attempt failed; retrying", metadata: ["attempt": "\(attempt)", "error": "\(error.message)"])
                try await Task.sleep(for: delay)
            } catch {
                configuration.instrumentation.connectAttempted?(true)
                throw error
            }
        }
    }

    /// Whether the pool counts the database unreachable (see the type's comment).
    public var isUnreachable: Bool { state.withLock { $0.unreachable != nil } }

    private func openFailed() {
        let waiter = state.withLock { state -> CheckedContinuation<Ticket, any Error>? in
            state.open -= 1
            state.lent -= 1
            return handOverOpenSlot(&state)
        }
        waiter?.resume(returning: .open)
    }

    /// Gives a freed connection slot to the first waiter, if any (the caller resumes it).
    private func handOverOpenSlot(_ state: inout State) -> CheckedContinuation<Ticket, any Error>? {
        guard !state.waiters.isEmpty, !state.closed else { return nil }
        state.open += 1
        state.lent += 1
        return state.waiters.removeFirst().continuation
    }

    private func release(_ session: PostgresSession, after error: (any Error)?) async {
        let lost = (error as? PostgresError)?.isConnectionLoss ?? false
        let reusable = await session.resetForReuse()
        if lost || !reusable {
            discard(session, dead: lost || !reusable)
            return
        }
        let now = ContinuousClock.now
        let idleTimeout = configuration.idleTimeout
        let (waiter, closeIt, expired) = state.withLock { state -> (CheckedContinuation<Ticket, any Error>?, Bool, [Idle]) in
            if state.closed {
                state.open -= 1
                state.lent -= 1
                return (nil, true, [])
            }
            if !state.waiters.isEmpty {
                // Handed straight over: it stays lent.
                return (state.waiters.removeFirst().continuation, false, [])
            }
            state.lent -= 1
            state.idle.append(Idle(session: session, since: now, generation: state.failureGeneration))
            // Oldest first (appended in return order, lent from the end).
            guard let idleTimeout, let first = state.idle.first, now - first.since > idleTimeout else { return (nil, false, []) }
            let count = state.idle.prefix { now - $0.since > idleTimeout }.count
            let expired = Array(state.idle.prefix(count))
            state.idle.removeFirst(count)
            state.open -= count
            return (nil, false, expired)
        }
        if closeIt { session.close() }
        for entry in expired { entry.session.close() }
        waiter?.resume(returning: .session(session, needsCheck: false))
    }

    private func discard(_ session: PostgresSession, dead: Bool) {
        session.close()
        let waiter = state.withLock { state -> CheckedContinuation<Ticket, any Error>? in
            state.open -= 1
            state.lent -= 1
            if dead { state.failureGeneration += 1 }
            return handOverOpenSlot(&state)
        }
        waiter?.resume(returning: .open)
    }
}
