internal import CLibPQ
import Logging
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A notification delivered by `NOTIFY` / `pg_notify`.
public struct PostgresNotification: Sendable, Equatable {
    public var channel: String
    public var payload: String
    /// The server process that sent it.
    public var senderPID: Int32
}

/// LISTEN/NOTIFY on a dedicated connection.
///
/// The connection lives on a thread of its own that waits with `poll()` on the connection's
/// socket and on an eventfd used to hand it commands; notifications go out through `events`.
/// When the connection is lost, the thread reconnects with backoff, runs `LISTEN` again for every
/// channel, and yields `.reconnected`: notifications sent while it was away are lost (that is how
/// PostgreSQL works), so consumers treat a reconnect as "something may have changed" and re-read
/// the state they track.
///
/// Threading: the `PGconn` is touched only by the listener thread; `commands` is guarded by its
/// mutex; `events`' continuation is thread-safe.
public final class PostgresListener: Sendable {
    public enum Event: Sendable, Equatable {
        case notification(PostgresNotification)
        /// The connection was re-established and every channel listened to again.
        case reconnected
    }

    /// Notifications and reconnects, in order. Holds at most 10,000 undelivered events and drops
    /// the oldest beyond that (a consumer that far behind must re-read state anyway).
    public let events: AsyncStream<Event>
    private let core: ListenerCore

    /// Starts the listener thread, which connects (and keeps reconnecting) on its own; nothing
    /// here blocks the caller.
    public init(
        conninfo: String, reconnectBackoff: Backoff = Backoff(initial: .milliseconds(50), maximum: .seconds(2)),
        logger: Logger = Logger(label: "postgres.listener")
    ) throws {
        let (stream, continuation) = AsyncStream.makeStream(of: Event.self, bufferingPolicy: .bufferingNewest(10_000))
        events = stream
        core = try ListenerCore(conninfo: conninfo, continuation: continuation, backoff: reconnectBackoff, logger: logger)
    }

    deinit { core.stop() }

    /// Starts listening on `channel` (any string; it is quoted as an identifier).
    /// Returns once the server has confirmed the `LISTEN` (while disconnected: once the listener
    /// has reconnected and listened again).
    public func listen(_ channel: String) async throws {
        try await core.submit(.listen(channel))
    }

    public func unlisten(_ channel: String) async throws {
        try await core.submit(.unlisten(channel))
    }

    /// Closes the connection, ends `events` and stops the thread.
    public func close() { core.stop() }

    /// The backend process of the current connection (tests use it to kill the connection).
    public var backendPID: Int32 { core.backendPID.load(ordering: .relaxed) }
}

/// The thread, the connection and the command queue behind a `PostgresListener`.
/// `@unchecked Sendable`: `connection`, `channels` and `retryAttempt` are used only on the listener
/// thread; `commands` and `stopped` are guarded by `queue`; `wakeWrite` is written from any thread
/// (pipe writes of one byte are atomic).
final class ListenerCore: @unchecked Sendable {
    enum Command {
        case listen(String)
        case unlisten(String)
    }

    private let conninfo: String
    private var connection: PostgresConnection?
    private var channels: Set<String> = []
    private var retryAttempt = 0
    private var hasConnected = false
    /// Commands that arrived while disconnected; confirmed after the next reconnect.
    private var deferred: [CheckedContinuation<Void, any Error>] = []
    private let continuation: AsyncStream<PostgresListener.Event>.Continuation
    private let backoff: Backoff
    private let logger: Logger
    /// A self-pipe: commands and stop() write a byte to `wakeWrite`; the thread polls `wakeRead`.
    private let wakeRead: Int32
    private let wakeWrite: Int32
    private let queue = Mutex<(commands: [(Command, CheckedContinuation<Void, any Error>)], stopped: Bool)>(([], false))
    let backendPID = Atomic<Int32>(0)

    init(
        conninfo: String, continuation: AsyncStream<PostgresListener.Event>.Continuation, backoff: Backoff, logger: Logger
    ) throws {
        self.conninfo = conninfo
        self.continuation = continuation
        self.backoff = backoff
        self.logger = logger
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw PostgresError.client(.connectionFailed, "pipe failed: errno \(errno)") }
        for fd in fds {
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        }
        wakeRead = fds[0]
        wakeWrite = fds[1]
        var thread: pthread_t = 0
        let box = Unmanaged.passRetained(self).toOpaque()
        let result = pthread_create(
            &thread, nil,
            { argument in
                let core = Unmanaged<ListenerCore>.fromOpaque(argument!).takeRetainedValue()
                core.run()
                return nil
            }, box)
        precondition(result == 0, "pthread_create failed: \(result)")
        pthread_detach(thread)
    }

    deinit {
        close(wakeRead)
        close(wakeWrite)
    }

    func submit(_ command: Command) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let accepted = queue.withLock { state -> Bool in
                if state.stopped { return false }
                state.commands.append((command, continuation))
                return true
            }
            if accepted { wake() } else { continuation.resume(throwing: PostgresError.client(.poolClosed, "the listener was closed")) }
        }
    }

    func stop() {
        let pending = queue.withLock { state -> [(Command, CheckedContinuation<Void, any Error>)] in
            state.stopped = true
            defer { state.commands.removeAll() }
            return state.commands
        }
        for (_, waiter) in pending { waiter.resume(throwing: PostgresError.client(.poolClosed, "the listener was closed")) }
        wake()
    }

    private func wake() {
        var one: UInt8 = 1
        _ = write(wakeWrite, &one, 1)
    }

    // MARK: - Listener thread

    private func run() {
        while true {
            let (commands, stopped) = queue.withLock { state in
                defer { state.commands.removeAll() }
                return (state.commands, state.stopped)
            }
            if stopped { break }
            for (command, waiter) in commands {
                do {
                    try perform(command)
                    if connection == nil { deferred.append(waiter) } else { waiter.resume() }
                } catch {
                    waiter.resume(throwing: error)
                }
            }
            if connection == nil && !reconnect() { continue }
            waitForInput()
        }
        connection = nil
        for waiter in deferred { waiter.resume(throwing: PostgresError.client(.poolClosed, "the listener was closed")) }
        deferred.removeAll()
        continuation.finish()
    }

    private func perform(_ command: Command) throws {
        switch command {
        case .listen(let channel):
            guard !channel.isEmpty else { throw PostgresError.client(.invalidArgument, "empty channel name") }
            channels.insert(channel)
            // While disconnected, the channel is listened to on reconnect.
            if let connection { try execute(connection, "LISTEN", channel) }
        case .unlisten(let channel):
            channels.remove(channel)
            if let connection { try execute(connection, "UNLISTEN", channel) }
        }
    }

    private func execute(_ connection: PostgresConnection, _ verb: String, _ channel: String) throws {
        do {
            // unsafeSQL: LISTEN takes no parameters; the channel is an escaped identifier.
            try connection.simpleQuery("\(verb) \(try connection.escapeIdentifier(channel))")
            deliverNotifications()
        } catch let error as PostgresError where error.isConnectionLoss {
            self.connection = nil
            retryAttempt = 1
        }
    }

    /// One connection attempt; retries wait a backoff delay first (a delay stop() interrupts).
    private func reconnect() -> Bool {
        if retryAttempt > 0 {
            let delay = backoff.delay(attempt: retryAttempt, random: Double.random(in: 0...1))
            let milliseconds = Int32(delay.components.seconds * 1000 + delay.components.attoseconds / 1_000_000_000_000_000)
            var descriptor = pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0)
            if poll(&descriptor, 1, milliseconds) > 0 { drainWake() }
            if queue.withLock({ $0.stopped }) { return false }
        }
        retryAttempt += 1
        do {
            let fresh = try PostgresConnection(conninfo: conninfo)
            for channel in channels.sorted() {
                try fresh.simpleQuery("LISTEN \(try fresh.escapeIdentifier(channel))")
            }
            connection = fresh
            backendPID.store(fresh.backendPID, ordering: .relaxed)
            retryAttempt = 0
            if hasConnected {
                logger.info("listener reconnected", metadata: ["channels": "\(channels.count)"])
                continuation.yield(.reconnected)
            }
            hasConnected = true
            for waiter in deferred { waiter.resume() }
            deferred.removeAll()
            return true
        } catch {
            logger.debug("listener reconnect failed", metadata: ["attempt": "\(retryAttempt)", "error": "\(error)"])
            return false
        }
    }

    private func waitForInput() {
        guard let connection else { return }
        var descriptors = [
            pollfd(fd: connection.socket, events: Int16(POLLIN), revents: 0),
            pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0),
        ]
        let ready = poll(&descriptors, 2, -1)
        if ready <= 0 { return }
        if descriptors[1].revents != 0 { drainWake() }
        if descriptors[0].revents != 0 {
            if PQconsumeInput(connection.handle) != 1 || !connection.isConnected {
                logger.info("listener connection lost; reconnecting")
                self.connection = nil
                retryAttempt = 1
                return
            }
            deliverNotifications()
        }
    }

    private func deliverNotifications() {
        guard let connection else { return }
        while let notify = PQnotifies(connection.handle) {
            let notification = PostgresNotification(
                channel: String(cString: notify.pointee.relname), payload: String(cString: notify.pointee.extra),
                senderPID: notify.pointee.be_pid)
            PQfreemem(notify)
            continuation.yield(.notification(notification))
        }
    }

    private func drainWake() {
        var buffer = [UInt8](repeating: 0, count: 64)
        while read(wakeRead, &buffer, buffer.count) > 0 {}
    }
}

extension PostgresSession {
    /// Sends a notification (`pg_notify`, with bound parameters). Inside a transaction it is
    /// delivered at commit, and not at all on rollback.
    public func notify(channel: String, payload: String = "") async throws {
        try await query("SELECT pg_notify($1, $2)", [channel, payload])
    }
}
