internal import CLibevent
internal import CNGRPCShims

/// The listening sockets (`evconnlistener`s) of one configured address on one loop — one per
/// address its host resolves to (`localhost`: ::1 and 127.0.0.1, as gRPC core binds it) — handing
/// each accepted socket to the next loop of the group, where a `ServerConnection` takes it over.
///
/// Threading: created and freed on `loop`'s thread. Ownership: owns the `evconnlistener`s
/// (which own and close the listening sockets); the accept callback gets an unretained pointer,
/// valid because `GRPCServer` keeps the listener until `close()` frees the evconnlisteners.
final class Listener: @unchecked Sendable {
    let loop: EventLoop
    let group: EventLoopGroup
    let core: ServerCore
    let tls: ReloadableTLSContext?
    private var listeners: [OpaquePointer] = []
    private(set) var port = 0
    /// Loop thread: the connections refused since the last log line, and when that line was written.
    private var refusals = RefusalLog()
    /// Loop thread: re-enables accepting after accept failed (see `acceptFailed`).
    private var resumeTimer: LoopTimer?

    struct BindError: Error, CustomStringConvertible {
        var description: String
    }

    init(loop: EventLoop, group: EventLoopGroup, core: ServerCore, tls: ReloadableTLSContext?) {
        self.loop = loop
        self.group = group
        self.core = core
        self.tls = tls
    }

    /// Binds and starts accepting; loop thread.
    func bind(host: String, port: Int) throws(BindError) {
        let me = Unmanaged.passUnretained(self).toOpaque()
        // Close-on-exec for the listening socket and every accepted one: a child process started
        // meanwhile (pg_ctl's postmaster daemon keeps every descriptor it inherited) held the port
        // after the server closed it, and a restart failed "Address already in use".
        let flags = LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC
        // A name listens on every address it has: `--grpc-address localhost:50051` bound only the
        // first, ::1 on a standard Debian, and a client of 127.0.0.1:50051 was refused.
        guard case .success(let resolved) = SocketAddress.resolveAll(host: host, port: port, passive: true) else {
            // Not resolved: errno says nothing about it (it printed "Success").
            throw BindError(description: Self.unresolvedMessage(host: host, port: port))
        }
        for (index, var address) in Self.addressesToBind(resolved, host: host).enumerated() {
            // Port 0: the later addresses take the port the first one got.
            if index > 0 { address.setPort(self.port) }
            let created = address.withPointer { evconnlistener_new_bind(loop.base, listenerAccept, me, flags, 1024, $0, $1) }
            guard let created else {
                let failure = Self.failureMessage(host: host, port: index > 0 ? self.port : port)
                if index > 0 && Self.skipsLaterAddress(failing: cngrpc_errno()) { continue }
                close()
                throw BindError(description: failure)
            }
            evconnlistener_set_error_cb(created, listenerAcceptError)
            listeners.append(created)
            if index == 0 { self.port = SocketAddress.localPort(of: evconnlistener_get_fd(created)) }
        }
    }

    /// The addresses `bind` listens on, of those `host` resolved to: all of a name's; with no
    /// host the wildcard, once (`::` already takes IPv4 too; 0.0.0.0 beside it is "in use").
    static func addressesToBind(_ resolved: [SocketAddress.Resolved], host: String) -> [SocketAddress.Resolved] {
        host.isEmpty ? Array(resolved.prefix(1)) : resolved
    }

    /// A further address of a family this machine cannot listen on (no IPv6) is skipped.
    static func skipsLaterAddress(failing errorNumber: Int32) -> Bool {
        [EAFNOSUPPORT, EADDRNOTAVAIL].contains(errorNumber)
    }

    /// Why an address cannot be listened on, worded alike by `bind` and `GRPCServer.preflight`.
    static func unresolvedMessage(host: String, port: Int) -> String {
        "cannot listen on \(host):\(port): \(host) is not an address or resolvable host name of this machine"
    }

    /// The same for a socket call that failed; reads errno unless given the error, so call it
    /// right after the failure.
    static func failureMessage(host: String, port: Int, errorNumber: Int32 = cngrpc_errno()) -> String {
        "cannot listen on \(host):\(port): \(String(cString: strerror(errorNumber)))"
    }

    fileprivate func accepted(fd: Int32, address: UnsafePointer<sockaddr>) {
        let peer = SocketAddress.describe(address)
        let client = ConnectionAdmission.clientAddress(ofPeer: peer)
        switch core.admission.admit(client) {
        case .admitted:
            break
        case .tooManyFromClient:
            evutil_closesocket(fd)
            core.connectionsRefusedPerClient.wrappingAdd(1, ordering: .relaxed)
            refusals.note(peer: peer, reason: .perClient, now: .now, logger: core.logger, limit: core.admission.limit ?? 0)
            return
        case .tooManyInAll:
            evutil_closesocket(fd)
            core.connectionsRefusedInAll.wrappingAdd(1, ordering: .relaxed)
            refusals.note(peer: peer, reason: .inAll, now: .now, logger: core.logger, limit: core.admission.totalLimit ?? 0)
            return
        }
        let target = group.next()
        let core = self.core
        // The context current at accept time: a reload affects only connections accepted after it.
        let tls = self.tls?.context
        if target === loop {
            ServerConnection.start(fd: fd, loop: target, core: core, tls: tls, peer: peer, client: client)
        } else {
            target.execute {
                ServerConnection.start(fd: fd, loop: target, core: core, tls: tls, peer: peer, client: client)
            }
        }
    }

    /// Accept failed (libevent already logged why): out of file descriptors, most likely. The
    /// socket stays readable, so libevent would retry at once, for ever, at full CPU and one log
    /// line each time; accepting pauses for a second instead, and the backlog waits meanwhile.
    fileprivate func acceptFailed(errorNumber: Int32) {
        guard resumeTimer == nil else { return }
        for listener in listeners { evconnlistener_disable(listener) }
        core.logger.error(
            "accept failed; not accepting connections for a second",
            metadata: ["error": "\(String(cString: strerror(errorNumber)))", "open_connections": "\(core.admission.openConnections)"])
        let timer = LoopTimer(loop: loop) { [weak self] in
            guard let self else { return }
            for listener in listeners { evconnlistener_enable(listener) }
            resumeTimer = nil
        }
        timer.schedule(after: .seconds(1))
        resumeTimer = timer
    }

    /// Stops accepting and closes the socket; loop thread; idempotent.
    func close() {
        resumeTimer = nil
        for listener in listeners { evconnlistener_free(listener) }
        listeners = []
    }
}

private func listenerAcceptError(_ listener: OpaquePointer?, _ argument: UnsafeMutableRawPointer?) {
    let errorNumber = cngrpc_errno()
    guard let argument else { return }
    Unmanaged<Listener>.fromOpaque(argument).takeUnretainedValue().acceptFailed(errorNumber: errorNumber)
}

private func listenerAccept(
    _ listener: OpaquePointer?, _ fd: Int32, _ address: UnsafeMutablePointer<sockaddr>?, _ length: Int32,
    _ argument: UnsafeMutableRawPointer?
) {
    guard let argument, let address else {
        evutil_closesocket(fd)
        return
    }
    Unmanaged<Listener>.fromOpaque(argument).takeUnretainedValue().accepted(fd: fd, address: address)
}
