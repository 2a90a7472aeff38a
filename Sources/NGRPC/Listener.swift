internal import CLibevent
internal import CNGRPCShims

/// A listening socket (`evconnlistener`) on one loop, handing each accepted socket to the next
/// loop of the group, where a `ServerConnection` takes it over.
///
/// Threading: created and freed on `loop`'s thread. Ownership: owns the `evconnlistener`
/// (which owns and closes the listening socket); the accept callback gets an unretained pointer,
/// valid because `GRPCServer` keeps the listener until `close()` frees the evconnlistener.
final class Listener: @unchecked Sendable {
    let loop: EventLoop
    let group: EventLoopGroup
    let core: ServerCore
    let tls: ReloadableTLSContext?
    private var listener: OpaquePointer?
    private(set) var port = 0

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
        let created = SocketAddress.withResolved(host: host, port: port, passive: true) { address, length in
            evconnlistener_new_bind(loop.base, listenerAccept, me, flags, 1024, address, length)
        }
        guard let created else {
            // Not resolved: errno says nothing about it (it printed "Success").
            throw BindError(description: Self.unresolvedMessage(host: host, port: port))
        }
        guard let created else {
            throw BindError(description: Self.failureMessage(host: host, port: port))
        }
        listener = created
        self.port = SocketAddress.localPort(of: evconnlistener_get_fd(created))
    }

    /// Why an address cannot be listened on, worded alike by `bind` and `GRPCServer.preflight`.
    static func unresolvedMessage(host: String, port: Int) -> String {
        "cannot listen on \(host):\(port): \(host) is not an address or resolvable host name of this machine"
    }

    /// The same for a socket call that failed; reads errno, so call it right after the failure.
    static func failureMessage(host: String, port: Int) -> String {
        "cannot listen on \(host):\(port): \(String(cString: strerror(cngrpc_errno())))"
    }

    fileprivate func accepted(fd: Int32, address: UnsafePointer<sockaddr>) {
        let peer = SocketAddress.describe(address)
        let client = ConnectionAdmission.clientAddress(ofPeer: peer)
        guard core.admission.admit(client) else {
            evutil_closesocket(fd)
            core.logger.warning(
                "connection refused: too many connections from one client",
                metadata: ["peer": "\(peer)", "limit": "\(core.admission.limit ?? 0)"])
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

    /// Stops accepting and closes the socket; loop thread; idempotent.
    func close() {
        if let listener { evconnlistener_free(listener) }
        listener = nil
    }
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
