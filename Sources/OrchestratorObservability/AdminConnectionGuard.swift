internal import CLibevent

#if canImport(Glibc)
    import Glibc
#endif

/// Bounds the admin server's connections: at most `limit` open at once, and each must send a
/// whole request within `requestDeadline` of opening or of its previous answer.
///
/// Why: every connection holds a file descriptor, and when the process runs out of them
/// libdispatch's worker-pool monitor (which opens /proc files) traps, killing the server. 1,250
/// slowloris connections to the admin port (one header byte a second, each renewing evhttp's
/// inactivity timeout) did that under a file limit of 1,200, with gRPC traffic running. libevent
/// 2.1's evhttp has no connection limit and exposes no accept hook, so the guard creates each
/// connection's bufferevent itself (`evhttp_set_bevcb`) and keeps a reference to it: evhttp's
/// free then clears the callbacks without closing the socket, and `sweep` notices that, drops
/// the reference (closing the socket) and forgets the connection. A connection over the limit or
/// past its deadline is shut down (`shutdown(2)`); evhttp reads the end of the stream and frees it.
///
/// Threading: the admin thread only (bevcb, request and sweep callbacks all run there).
final class AdminConnectionGuard {
    struct Connection {
        /// When it opened or its last answer went out; the next request must arrive within the deadline.
        var since: ContinuousClock.Instant
        /// Requests received and not yet answered: the deadline waits for the answer.
        var requestsInFlight = 0
        /// Over the limit when it opened: closed at the next sweep.
        var refused = false
        /// To be closed at the next sweep once its answer is out (an answer to CONNECT, which
        /// libevent keeps open for a tunnel whatever the headers say).
        var closeRequested = false
        var closing = false
    }

    let limit: Int
    let requestDeadline: Duration
    private var connections: [OpaquePointer: Connection] = [:]
    /// Connections refused or cut since the last report, for one log line per sweep.
    private(set) var refusedSinceReport = 0
    private(set) var timedOutSinceReport = 0

    init(limit: Int, requestDeadline: Duration) {
        self.limit = limit
        self.requestDeadline = requestDeadline
    }

    /// Connections evhttp has not freed yet (those being closed included): each holds a descriptor.
    var openCount: Int { connections.count }

    /// Whether a connection refused over the limit still holds its descriptor.
    var refusedStillOpen: Bool { connections.values.contains { $0.refused } }

    /// evhttp's bevcb: the bufferevent of a new connection (evhttp sets its socket right after).
    /// Returns whether it is over the limit, so the caller sweeps at once rather than in a second.
    func open(base: OpaquePointer) -> (bufferevent: OpaquePointer?, overLimit: Bool) {
        guard let bufferevent = bufferevent_socket_new(base, -1, Int32(BEV_OPT_CLOSE_ON_FREE.rawValue)) else { return (nil, false) }
        bufferevent_incref(bufferevent)
        let live = connections.values.count { !$0.closing && !$0.refused }
        var connection = Connection(since: .now)
        connection.refused = live >= limit
        connections[bufferevent] = connection
        return (bufferevent, connection.refused)
    }

    /// A whole request arrived on `bufferevent`'s connection.
    func requestReceived(on bufferevent: OpaquePointer?) {
        guard let bufferevent else { return }
        connections[bufferevent]?.requestsInFlight += 1
    }

    /// Its answer went out: the deadline for the next request starts now.
    func answered(on bufferevent: OpaquePointer?) {
        guard let bufferevent, var connection = connections[bufferevent] else { return }
        connection.requestsInFlight = max(0, connection.requestsInFlight - 1)
        connection.since = .now
        connections[bufferevent] = connection
    }

    /// Closes `bufferevent`'s connection at the next sweep (its answer is written by then).
    func closeAfterAnswer(on bufferevent: OpaquePointer?) {
        guard let bufferevent else { return }
        connections[bufferevent]?.closeRequested = true
    }

    /// Forgets connections evhttp freed (closing their sockets) and shuts down those refused or
    /// past their deadline.
    func sweep(now: ContinuousClock.Instant = .now) {
        for (bufferevent, connection) in connections {
            if Self.isFreed(bufferevent) {
                connections[bufferevent] = nil
                _ = bufferevent_decref(bufferevent)
                continue
            }
            guard !connection.closing else { continue }
            let late = connection.requestsInFlight == 0 && now - connection.since > requestDeadline
            let asked = connection.closeRequested && connection.requestsInFlight == 0
            guard connection.refused || late || asked else { continue }
            // The socket is still open: this reference keeps evhttp's free from closing it.
            let fd = bufferevent_getfd(bufferevent)
            if fd >= 0 { _ = shutdown(fd, Int32(SHUT_RDWR)) }
            connections[bufferevent]?.closing = true
            if connection.refused { refusedSinceReport += 1 } else if !asked { timedOutSinceReport += 1 }
        }
    }

    /// Resets the counts of refused and timed-out connections (after they were logged).
    func resetReport() {
        refusedSinceReport = 0
        timedOutSinceReport = 0
    }

    /// Drops every reference (the server is stopping: evhttp_free already freed the connections).
    func releaseAll() {
        for bufferevent in connections.keys { _ = bufferevent_decref(bufferevent) }
        connections = [:]
    }

    /// bufferevent_free clears the callbacks; evhttp keeps its own set while a connection lives.
    private static func isFreed(_ bufferevent: OpaquePointer) -> Bool {
        var read: bufferevent_data_cb?
        var write: bufferevent_data_cb?
        var event: bufferevent_event_cb?
        var argument: UnsafeMutableRawPointer?
        bufferevent_getcb(bufferevent, &read, &write, &event, &argument)
        return read == nil && write == nil && event == nil
    }
}
