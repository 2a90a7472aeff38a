internal import CLibevent
internal import NGRPC
import Logging
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// The admin HTTP/1.1 server (health, readiness, metrics, log level) on libevent's evhttp, with
/// its own `event_base` and thread so that scrapes and probes never wait behind gRPC traffic
/// (and a stuck gRPC loop still answers `/healthz`).
///
/// Flow: evhttp calls `handle` on the admin thread; the request is copied out and answered by an
/// async handler on the Swift pool; the reply comes back to the admin thread through a
/// mutex-guarded queue and a wake-up event, where `evhttp_send_reply` sends it. A client that
/// hangs up first is fine: libevent detaches (does not free) a request whose reply is pending
/// and frees it when the reply is sent.
///
/// Threading: `base`, `http` and the wake event are used only on the admin thread, except
/// `event_active` on the wake event (safe once `evthread_use_pthreads()` ran). Ownership: this
/// object owns the base, the evhttp (with its bound socket and connections) and the wake event;
/// `stop()` frees the evhttp on the loop thread, joins the thread and frees the rest.
public final class AdminHTTPServer: @unchecked Sendable {
    public struct StartError: Error, CustomStringConvertible {
        public var description: String
    }

    /// Where the server listens (the real port when 0 was asked for).
    public let host: String
    public let port: Int
    private let routes: AdminRoutes
    private let logger: Logger
    private let base: OpaquePointer
    /// Admin thread only; nil after `stop()` freed it.
    private var http: OpaquePointer?
    private var wakeEvent: OpaquePointer?
    /// Admin thread only: the connection limit and request deadline, swept by `sweepEvent`.
    private let connectionGuard: AdminConnectionGuard
    private var sweepEvent: OpaquePointer?
    private var lastGuardReport: ContinuousClock.Instant?
    /// The listening sockets' evconnlisteners (owned by evhttp), paused for a second when accept
    /// fails (out of descriptors), as the gRPC listeners are; `resumeEvent` re-enables them.
    private var listeners: [OpaquePointer] = []
    private var resumeEvent: OpaquePointer?
    /// Admin thread: accepting stopped while a connection refused over the limit still holds its
    /// descriptor (until a sweep frees it; `quickSweepEvent` sweeps again soon), and because
    /// accept failed (until `resumeEvent`).
    private var pausedAtLimit = false
    private var pausedAfterFailure = false
    private var quickSweepEvent: OpaquePointer?
    private var thread: pthread_t = 0
    private let pending = Mutex<[@Sendable () -> Void]>([])
    private let stopped = Atomic<Bool>(false)

    /// Binds `host:port` and starts serving on a thread of its own.
    /// - Throws: `StartError` when the address cannot be bound.
    /// Most admin connections open at once, and how long each may take to send a whole request
    /// (from opening, or from its previous answer); see `AdminConnectionGuard`.
    public static let maxConnections = 64
    public static let requestDeadline: Duration = .seconds(10)

    public init(
        host: String, port: Int, routes: AdminRoutes, logger: Logger,
        maxConnections: Int = AdminHTTPServer.maxConnections, requestDeadline: Duration = AdminHTTPServer.requestDeadline
    ) throws {
        _ = Self.threadingInitialised
        guard let base = event_base_new() else { throw StartError(description: "event_base_new failed") }
        guard let http = evhttp_new(base) else {
            event_base_free(base)
            throw StartError(description: "evhttp_new failed")
        }
        var handles: [OpaquePointer] = []
        guard let handle = evhttp_bind_socket_with_handle(http, host, UInt16(port)) else {
            evhttp_free(http)
            event_base_free(base)
            throw StartError(description: "cannot listen on \(host):\(port) for the admin HTTP server: \(String(cString: strerror(errno)))")
        }
        handles.append(handle)
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let bound = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(evhttp_bound_socket_get_fd(handle), $0, &length) }
        }
        var boundPort = port
        let family = storage.ss_family
        if bound == 0 {
            boundPort = Int(withUnsafePointer(to: &storage) { pointer -> UInt16 in
                if family == sa_family_t(AF_INET6) {
                    return pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { UInt16(bigEndian: $0.pointee.sin6_port) }
                }
                return pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { UInt16(bigEndian: $0.pointee.sin_port) }
            })
        }
        // A name listens on each of its addresses, as the gRPC listeners do: evhttp bound only the
        // first (`localhost`: ::1 on a standard Debian), and a scraper of 127.0.0.1 was refused.
        let first = bound == 0 ? Self.numericHost(of: &storage, length: length) : nil
        for other in Self.numericHosts(of: host) where other != first {
            if let extra = evhttp_bind_socket_with_handle(http, other, UInt16(boundPort)) {
                handles.append(extra)
                continue
            }
            let code = errno
            if code == EAFNOSUPPORT || code == EADDRNOTAVAIL { continue }  // a family this machine lacks
            evhttp_free(http)
            event_base_free(base)
            throw StartError(description: "cannot listen on \(other):\(boundPort) (an address of \(host)) for the admin HTTP server: "
                + String(cString: strerror(code)))
        }
        self.host = host
        self.port = boundPort
        self.routes = routes
        self.logger = logger
        self.base = base
        self.http = http
        connectionGuard = AdminConnectionGuard(limit: maxConnections, requestDeadline: requestDeadline)
        let me = Unmanaged.passUnretained(self).toOpaque()
        // Every method libevent parses reaches the router, which answers 405 naming the allowed
        // ones (OBSERVABILITY.md); methods left out here got libevent's own 501 HTML page.
        let methods = [EVHTTP_REQ_GET, EVHTTP_REQ_HEAD, EVHTTP_REQ_PUT, EVHTTP_REQ_POST, EVHTTP_REQ_DELETE, EVHTTP_REQ_OPTIONS,
                       EVHTTP_REQ_PATCH, EVHTTP_REQ_TRACE, EVHTTP_REQ_CONNECT]
        evhttp_set_allowed_methods(http, UInt16(methods.reduce(0) { $0 | $1.rawValue }))
        evhttp_set_max_body_size(http, 64 * 1024)
        evhttp_set_max_headers_size(http, 16 * 1024)
        evhttp_set_timeout(http, 30)
        evhttp_set_gencb(http, adminRequestCallback, me)
        evhttp_set_bevcb(http, adminBufferEventCallback, me)
        listeners = handles.compactMap { evhttp_bound_socket_get_listener($0) }
        for listener in listeners { evconnlistener_set_error_cb(listener, adminAcceptError) }
        Self.register(listeners, for: self)
        resumeEvent = event_new(base, -1, 0, adminResumeCallback, me)
        wakeEvent = event_new(base, -1, 0, adminWakeCallback, me)
        sweepEvent = event_new(base, -1, Int16(EV_PERSIST), adminSweepCallback, me)
        quickSweepEvent = event_new(base, -1, 0, adminSweepCallback, me)
        var second = timeval(tv_sec: 1, tv_usec: 0)
        if let sweepEvent { event_add(sweepEvent, &second) }
        // The thread holds a strong reference until it exits (released in `threadMain`).
        let box = Unmanaged.passRetained(self).toOpaque()
        let result = pthread_create(&thread, nil, { argument in
            let server = Unmanaged<AdminHTTPServer>.fromOpaque(argument!).takeRetainedValue()
            server.threadMain()
            return nil
        }, box)
        precondition(result == 0, "pthread_create failed: \(result)")
    }

    deinit {
        if let wakeEvent { event_free(wakeEvent) }
        if let sweepEvent { event_free(sweepEvent) }
        if let quickSweepEvent { event_free(quickSweepEvent) }
        if let resumeEvent { event_free(resumeEvent) }
        event_base_free(base)
    }

    /// The numeric form of every stream address `host` resolves to for listening, once each
    /// (itself when it is numeric); empty when it does not resolve.
    public static func numericHosts(of host: String) -> [String] {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_family = AF_UNSPEC
        hints.ai_flags = AI_PASSIVE
        var list: UnsafeMutablePointer<addrinfo>?
        guard !host.isEmpty, getaddrinfo(host, nil, &hints, &list) == 0 else { return [] }
        defer { freeaddrinfo(list) }
        var hosts: [String] = []
        var entry = list
        while let current = entry {
            var buffer = [CChar](repeating: 0, count: Int(NI_MAXHOST))
            if getnameinfo(current.pointee.ai_addr, current.pointee.ai_addrlen, &buffer, socklen_t(buffer.count), nil, 0, NI_NUMERICHOST) == 0 {
                let text = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                if !hosts.contains(text) { hosts.append(text) }
            }
            entry = current.pointee.ai_next
        }
        return hosts
    }

    private static func numericHost(of storage: inout sockaddr_storage, length: socklen_t) -> String? {
        var buffer = [CChar](repeating: 0, count: Int(NI_MAXHOST))
        let result = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                getnameinfo($0, length, &buffer, socklen_t(buffer.count), nil, 0, NI_NUMERICHOST)
            }
        }
        return result == 0 ? String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) : nil
    }

    private static let threadingInitialised: Bool = {
        // Idempotent with NGRPC's own call: the same pthreads callbacks are installed either way.
        evthread_use_pthreads()
        LibeventLog.install()
        // A scraper that hangs up while its reply is written must not kill the process (the admin
        // server starts before the gRPC server, whose event loops ignore SIGPIPE too).
        _ = signal(SIGPIPE, SIG_IGN)
        return true
    }()

    private func threadMain() {
        event_base_loop(base, EVLOOP_NO_EXIT_ON_EMPTY)
    }

    /// Stops listening, closes connections, and joins the thread. Idempotent; not from the admin thread.
    public func stop() {
        guard !stopped.exchange(true, ordering: .acquiringAndReleasing) else { return }
        execute { [self] in
            if let http { evhttp_free(http) }
            http = nil
            connectionGuard.releaseAll()
            if let sweepEvent { event_del(sweepEvent) }
            if let quickSweepEvent { event_del(quickSweepEvent) }
            if let resumeEvent { event_del(resumeEvent) }
            Self.unregister(listeners)
            listeners = []
            event_base_loopbreak(base)
        }
        pthread_join(thread, nil)
    }

    /// Runs `body` on the admin thread, soon.
    private func execute(_ body: @escaping @Sendable () -> Void) {
        let wake = pending.withLock { queue -> Bool in
            queue.append(body)
            return queue.count == 1
        }
        if wake, let wakeEvent { event_active(wakeEvent, 0, 0) }
    }

    fileprivate func drain() {
        let work = pending.withLock { queue -> [@Sendable () -> Void] in
            defer { queue.removeAll() }
            return queue
        }
        for body in work { body() }
    }

    /// Admin thread: copies the request out and answers it from an async handler.
    fileprivate func handle(_ request: OpaquePointer) {
        let parsed = Self.parse(request)
        let address = UInt(bitPattern: Int(bitPattern: UnsafeMutableRawPointer(request)))
        let connection = evhttp_request_get_connection(request).flatMap { evhttp_connection_get_bufferevent($0) }
        connectionGuard.requestReceived(on: connection)
        if evhttp_request_get_command(request) == EVHTTP_REQ_CONNECT { connectionGuard.closeAfterAnswer(on: connection) }
        let connectionAddress = connection.map { UInt(bitPattern: Int(bitPattern: UnsafeMutableRawPointer($0))) }
        let routes = self.routes
        Task { [self] in
            let response = await routes.respond(to: parsed)
            execute { [self] in
                guard http != nil else { return }  // stopped: evhttp_free already dropped the request
                Self.send(response, to: OpaquePointer(bitPattern: address)!)
                connectionGuard.answered(on: connectionAddress.flatMap { OpaquePointer(bitPattern: $0) })
            }
        }
    }

    /// evhttp's bevcb: a new connection's bufferevent, counted by the guard.
    fileprivate func newConnection(base: OpaquePointer) -> OpaquePointer? {
        let (bufferevent, overLimit) = connectionGuard.open(base: base)
        // A connection over the limit holds a descriptor until the sweep closes it and evhttp frees
        // it, and libevent's accept loop took thousands a second meanwhile: a connect flood used
        // up the process's descriptors anyway (found by black-box testing). So accepting stops
        // at each refusal (libevent ends its accept loop when the callback disables the
        // listener) and resumes once that connection is gone: refusals hold one descriptor at a
        // time, and the connections behind it wait in the kernel's backlog.
        if overLimit {
            if !pausedAtLimit {
                pausedAtLimit = true
                for listener in listeners { evconnlistener_disable(listener) }
            }
            if let sweepEvent { event_active(sweepEvent, 0, 0) }
        }
        return bufferevent
    }

    /// Accept failed (out of descriptors, most likely): libevent would retry at once, for ever.
    fileprivate func acceptFailed(errorNumber: Int32) {
        guard let resumeEvent, event_pending(resumeEvent, Int16(EV_TIMEOUT), nil) == 0 else { return }
        pausedAfterFailure = true
        for listener in listeners { evconnlistener_disable(listener) }
        logger.error(
            "admin server: accept failed; not accepting connections for a second",
            metadata: ["error": "\(String(cString: strerror(errorNumber)))", "open": "\(connectionGuard.openCount)"])
        var second = timeval(tv_sec: 1, tv_usec: 0)
        event_add(resumeEvent, &second)
    }

    /// The server of each listener, for `adminAcceptError`: libevent hands error callbacks the
    /// listener's own argument, which evhttp set to itself.
    private struct WeakServer: @unchecked Sendable { weak var server: AdminHTTPServer? }
    private static let serversByListener = Mutex<[UInt: WeakServer]>([:])

    private static func key(_ listener: OpaquePointer) -> UInt { UInt(bitPattern: Int(bitPattern: UnsafeMutableRawPointer(listener))) }

    private static func register(_ listeners: [OpaquePointer], for server: AdminHTTPServer) {
        serversByListener.withLock { table in for listener in listeners { table[key(listener)] = WeakServer(server: server) } }
    }

    private static func unregister(_ listeners: [OpaquePointer]) {
        serversByListener.withLock { table in for listener in listeners { table[key(listener)] = nil } }
    }

    fileprivate static func acceptFailed(listener: OpaquePointer?, errorNumber: Int32) {
        guard let listener else { return }
        let server = serversByListener.withLock { $0[key(listener)]?.server }
        server?.acceptFailed(errorNumber: errorNumber)
    }

    fileprivate func resumeAccepting() {
        guard http != nil else { return }
        pausedAfterFailure = false
        if !pausedAtLimit { for listener in listeners { evconnlistener_enable(listener) } }
    }

    /// Once a second (and at once for a connection over the limit): see `AdminConnectionGuard.sweep`.
    /// Connections refused or cut are logged at most every 10 s, with their numbers.
    fileprivate func sweep() {
        connectionGuard.sweep()
        if pausedAtLimit {
            if connectionGuard.refusedStillOpen {
                var soon = timeval(tv_sec: 0, tv_usec: 1000)
                if let quickSweepEvent { event_add(quickSweepEvent, &soon) }
            } else {
                pausedAtLimit = false
                if !pausedAfterFailure { for listener in listeners { evconnlistener_enable(listener) } }
            }
        }
        let refused = connectionGuard.refusedSinceReport
        let timedOut = connectionGuard.timedOutSinceReport
        guard refused + timedOut > 0 else { return }
        let now = ContinuousClock.now
        if let last = lastGuardReport, now - last < .seconds(10) { return }
        lastGuardReport = now
        connectionGuard.resetReport()
        logger.warning(
            "admin connections closed: over the connection limit, or no whole request within the deadline",
            metadata: [
                "refused_over_limit": "\(refused)", "timed_out": "\(timedOut)", "limit": "\(connectionGuard.limit)",
                "deadline_s": "\(connectionGuard.requestDeadline.components.seconds)", "open": "\(connectionGuard.openCount)",
            ])
    }

    private static func parse(_ request: OpaquePointer) -> AdminRequest {
        let method: AdminRequest.Method
        switch evhttp_request_get_command(request) {
        case EVHTTP_REQ_GET: method = .get
        case EVHTTP_REQ_HEAD: method = .head
        case EVHTTP_REQ_PUT: method = .put
        case EVHTTP_REQ_POST: method = .post
        case EVHTTP_REQ_DELETE: method = .delete
        case EVHTTP_REQ_OPTIONS: method = .options
        case EVHTTP_REQ_PATCH: method = .patch
        case EVHTTP_REQ_TRACE: method = .trace
        case EVHTTP_REQ_CONNECT: method = .connect
        default: method = .other
        }
        let uri = Self.originForm(evhttp_request_get_uri(request).map { String(cString: $0) } ?? "/")
        let path: String
        var query: String?
        if let mark = uri.firstIndex(of: "?") {
            path = String(uri[..<mark])
            query = String(uri[uri.index(after: mark)...])
        } else {
            path = uri
        }
        var body: [UInt8] = []
        if let input = evhttp_request_get_input_buffer(request) {
            let length = evbuffer_get_length(input)
            if length > 0 {
                body = [UInt8](repeating: 0, count: length)
                _ = body.withUnsafeMutableBytes { evbuffer_copyout(input, $0.baseAddress, length) }
            }
        }
        return AdminRequest(method: method, path: path, query: query, body: body)
    }

    /// The path and query of a request target in absolute form (`http://host/healthz`), which
    /// HTTP/1.1 servers must accept (RFC 9112 §3.2.2) and which was answered 404; other targets
    /// unchanged.
    static func originForm(_ target: String) -> String {
        let lowered = target.lowercased()
        guard lowered.hasPrefix("http://") || lowered.hasPrefix("https://") else { return target }
        let afterScheme = target[target.index(target.firstIndex(of: ":")!, offsetBy: 3)...]
        guard let slash = afterScheme.firstIndex(where: { $0 == "/" || $0 == "?" }) else { return "/" }
        let rest = String(afterScheme[slash...])
        return rest.hasPrefix("?") ? "/" + rest : rest
    }

    private static func send(_ response: AdminResponse, to request: OpaquePointer) {
        if let headers = evhttp_request_get_output_headers(request) {
            evhttp_add_header(headers, "Content-Type", response.contentType)
            evhttp_add_header(headers, "Cache-Control", "no-store")
            for (name, value) in response.headers { evhttp_add_header(headers, name, value) }
            // libevent sends no length with an answer to CONNECT (it expects a tunnel), so the
            // client could not tell where the 405 ends and the connection stayed open: it is
            // closed once the answer is out (`handle`), as this header says.
            if evhttp_request_get_command(request) == EVHTTP_REQ_CONNECT { evhttp_add_header(headers, "Connection", "close") }
        }
        guard let buffer = evbuffer_new() else {
            evhttp_send_error(request, 500, nil)
            return
        }
        defer { evbuffer_free(buffer) }
        _ = response.body.withUnsafeBytes { evbuffer_add(buffer, $0.baseAddress, $0.count) }
        evhttp_send_reply(request, Int32(response.status), response.reason, buffer)
    }
}

private func adminRequestCallback(_ request: OpaquePointer?, _ argument: UnsafeMutableRawPointer?) {
    guard let request, let argument else { return }
    Unmanaged<AdminHTTPServer>.fromOpaque(argument).takeUnretainedValue().handle(request)
}

private func adminBufferEventCallback(_ base: OpaquePointer?, _ argument: UnsafeMutableRawPointer?) -> OpaquePointer? {
    guard let base, let argument else { return nil }
    return Unmanaged<AdminHTTPServer>.fromOpaque(argument).takeUnretainedValue().newConnection(base: base)
}

private func adminSweepCallback(_ fd: Int32, _ what: Int16, _ argument: UnsafeMutableRawPointer?) {
    guard let argument else { return }
    Unmanaged<AdminHTTPServer>.fromOpaque(argument).takeUnretainedValue().sweep()
}

private func adminAcceptError(_ listener: OpaquePointer?, _ argument: UnsafeMutableRawPointer?) {
    let errorNumber = errno
    AdminHTTPServer.acceptFailed(listener: listener, errorNumber: errorNumber)
}

private func adminResumeCallback(_ fd: Int32, _ what: Int16, _ argument: UnsafeMutableRawPointer?) {
    guard let argument else { return }
    Unmanaged<AdminHTTPServer>.fromOpaque(argument).takeUnretainedValue().resumeAccepting()
}

private func adminWakeCallback(_ fd: Int32, _ what: Int16, _ argument: UnsafeMutableRawPointer?) {
    guard let argument else { return }
    Unmanaged<AdminHTTPServer>.fromOpaque(argument).takeUnretainedValue().drain()
}
