internal import CLibevent
internal import CNGHTTP2
internal import CNGRPCShims
import Logging

/// One accepted HTTP/2 connection: a bufferevent (plain or OpenSSL) and an nghttp2 server session.
///
/// Threading: created, used and closed only on `loop`'s thread. Ownership: the loop's
/// `ConnectionRegistry` holds the strong reference from `start` until `close`; libevent and
/// nghttp2 get unretained pointers, valid because `close` frees the session and the bufferevent
/// (which closes the socket and, for TLS, frees the SSL) before dropping the registry entry.
/// `close` is never called from inside an nghttp2 callback: callbacks set `closeRequested`.
final class ServerConnection: LoopFlushable, LoopTurnEndWriter, @unchecked Sendable {
    let loop: EventLoop
    let core: ServerCore
    let peer: String
    /// The peer's IP address, counted in `core.admission` until `close`.
    let client: String
    let isSecure: Bool
    /// The verified client certificate, read once after the TLS handshake (mutual TLS).
    private var peerCertificateRead = false
    private var cachedPeerCertificate: PeerCertificate?
    private(set) var session: OpaquePointer?
    private var bufferEvent: OpaquePointer?
    /// Plaintext connections only: their reads and most writes bypass the bufferevent.
    private var plainSocket: PlainSocket?
    private var turnEndWriteScheduled = false
    var streams: [Int32: ServerStream] = [:]
    /// Declared bytes of this connection's partly received messages, and the streams waiting to
    /// reserve theirs, oldest first (`ServerConnection+ReceiveBudget.swift`).
    var partialRequestBytes = 0
    var streamsAwaitingReceiveBudget: [ServerStream] = []

    private var flushRequested = false
    var closeRequested = false
    private var closeAfterFlush = false
    /// After a GOAWAY for abuse, nothing more the client sends is processed.
    private var ignoreInput = false
    /// One closing GOAWAY per connection, however many limits are broken afterwards.
    private var goAwaySent = false
    /// After a GOAWAY for abuse nghttp2's output is no longer sent: frames it still had queued
    /// (one RST_STREAM per stream of a burst it already parsed) would keep answering the abuser.
    /// `abuseGoAway` holds our own GOAWAY frame until it is written.
    private var outputAbandoned = false
    private var abuseGoAway: [UInt8]?
    /// Whether the first frame (our SETTINGS) has gone out, with MAX_CONCURRENT_STREAMS added.
    private var prefaceSettingsSent = false
    private(set) var isClosed = false
    private var readingPaused = false
    var draining = false

    private var handshakeTimer: LoopTimer?
    private var keepaliveTimer: LoopTimer?
    private var keepaliveTimeoutTimer: LoopTimer?
    private var idleTimer: LoopTimer?
    /// Set once the connection only waits for the peer to close (`lingerThenClose`).
    private var lingerTimer: LoopTimer?
    var awaitingPingAck = false

    var pingStrikes = 0
    var lastPingReceived: ContinuousClock.Instant?
    var dataSentSinceLastPing = true
    var resetTokens: Double
    var resetTokensUpdated = ContinuousClock.now

    private init(loop: EventLoop, core: ServerCore, peer: String, client: String, isSecure: Bool) {
        self.loop = loop
        self.core = core
        self.peer = peer
        self.client = client
        self.isSecure = isSecure
        configuration = core.configuration
        logger = core.logger
        resetTokens = Double(core.configuration.serverResetBurst)
    }

    /// A copy held by the connection: reading fields of a stored struct costs nothing, while a
    /// computed `core.configuration` copied the whole struct (and retained its references) on
    /// every header in the profile.
    let configuration: ServerConfiguration
    let logger: Logger

    /// Takes over an accepted socket; loop thread. Closes `fd` itself on failure.
    static func start(fd: Int32, loop: EventLoop, core: ServerCore, tls: TLSContext?, peer: String, client: String) {
        let connection = ServerConnection(loop: loop, core: core, peer: peer, client: client, isSecure: tls != nil)
        // Balanced by `close`, which runs exactly once for every connection, set up or not.
        core.connectionsAccepted.wrappingAdd(1, ordering: .relaxed)
        core.connectionsOpen.wrappingAdd(1, ordering: .relaxed)
        guard connection.setUp(fd: fd, tls: tls) else {
            connection.close()
            return
        }
        core.registries[loop.index].connections[ObjectIdentifier(connection)] = connection
    }

    private func setUp(fd: Int32, tls: TLSContext?) -> Bool {
        var noDelay: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &noDelay, socklen_t(MemoryLayout<Int32>.size))
        let options = Int32(BEV_OPT_CLOSE_ON_FREE.rawValue)
        let me = Unmanaged.passUnretained(self).toOpaque()
        if let tls {
            guard let ssl = tls.makeSSL() else {
                evutil_closesocket(fd)
                return false
            }
            bufferEvent = bufferevent_openssl_socket_new(
                loop.base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING, options | Int32(BEV_OPT_DEFER_CALLBACKS.rawValue))
            if bufferEvent == nil { SSL_free(ssl) }
        } else {
            bufferEvent = bufferevent_socket_new(loop.base, fd, options)
        }
        guard let bufferEvent else {
            evutil_closesocket(fd)
            return false
        }
        if tls == nil {
            // Freed before the bufferevent, which closes the socket (`close`).
            plainSocket = PlainSocket(base: loop.base, socket: fd, onReadable: serverConnectionSocketReadable, argument: me)
            guard plainSocket != nil else { return false }
        }
        bufferevent_setcb(bufferEvent, serverConnectionRead, serverConnectionWrite, serverConnectionEvent, me)
        bufferevent_setwatermark(bufferEvent, Int16(EV_WRITE), configuration.connectionOutputHighWatermark / 4, 0)

        var session: OpaquePointer?
        guard nghttp2_session_server_new2(&session, serverSessionCallbacks.pointer, me, core.option) == 0, let session else {
            return false
        }
        self.session = session
        // SETTINGS_MAX_CONCURRENT_STREAMS is not given to nghttp2: once acknowledged, nghttp2
        // answers a stream over it with a connection error, killing the calls in flight. `flush`
        // adds it to this first SETTINGS frame on the wire instead, and `beginStream` refuses
        // streams past it with REFUSED_STREAM (which clients retry), as grpc-go and grpc-core do.
        var settings = [
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE.rawValue),
                value: UInt32(configuration.maxHeaderListSize)),
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE.rawValue),
                value: UInt32(configuration.initialStreamWindowSize)),
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_ENABLE_PUSH.rawValue), value: 0),
        ]
        guard nghttp2_submit_settings(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), &settings, settings.count) == 0 else {
            return false
        }
        nghttp2_session_set_local_window_size(
            session, UInt8(NGHTTP2_FLAG_NONE.rawValue), 0, Int32(clamping: configuration.connectionWindowSize))

        // Timers are owned by the connection and freed in `close`, so `self` is alive when they fire.
        handshakeTimer = LoopTimer(loop: loop) { [unowned(unsafe) self] in
            self.logger.debug("handshake timeout", metadata: ["peer": "\(self.peer)"])
            self.close()
        }
        handshakeTimer?.schedule(after: configuration.handshakeTimeout)
        if let interval = configuration.keepaliveInterval {
            keepaliveTimer = LoopTimer(loop: loop) { [unowned(unsafe) self] in self.sendKeepalive() }
            keepaliveTimer?.schedule(after: interval)
            keepaliveTimeoutTimer = LoopTimer(loop: loop) { [unowned(unsafe) self] in
                self.logger.info("keepalive ping not acknowledged, closing", metadata: ["peer": "\(self.peer)"])
                self.close()
            }
        }
        if let idle = configuration.connectionIdleTimeout {
            idleTimer = LoopTimer(loop: loop) { [unowned(unsafe) self] in self.goAway(code: NGHTTP2_NO_ERROR, debug: "idle") }
            idleTimer?.schedule(after: idle)
        }
        if let plainSocket {
            bufferevent_enable(bufferEvent, Int16(EV_WRITE))
            plainSocket.resumeReading()
        } else {
            bufferevent_enable(bufferEvent, Int16(EV_READ | EV_WRITE))
        }
        flush()
        return true
    }

    // MARK: I/O

    func onReadable() {
        guard let bufferEvent, let session else { return }
        let input = bufferevent_get_input(bufferEvent)
        if ignoreInput {
            evbuffer_drain(input, evbuffer_get_length(input))
            return
        }
        while !isClosed && !closeRequested && !ignoreInput {
            let length = evbuffer_get_contiguous_space(input)
            if length == 0 { break }
            guard let bytes = evbuffer_pullup(input, length) else { break }
            let result = nghttp2_session_mem_recv(session, bytes, length)
            if result < 0 {
                protocolFailure(code: Int32(result))
                return
            }
            evbuffer_drain(input, length)
        }
        if closeRequested {
            close()
            return
        }
        flush()
    }

    /// A plaintext connection's socket is readable (`PlainSocket`).
    func onSocketReadable() {
        guard let plainSocket, let session else { return }
        let buffer = loop.receiveBuffer
        switch plainSocket.read(into: buffer) {
        case .wouldBlock:
            return
        case .ended:
            close()
            return
        case .received(let count):
            if ignoreInput { return }
            if !closeRequested {
                let result = nghttp2_session_mem_recv(session, buffer.baseAddress!.assumingMemoryBound(to: UInt8.self), count)
                if result < 0 {
                    protocolFailure(code: Int32(result))
                    return
                }
            }
        }
        if closeRequested {
            close()
            return
        }
        flush()
    }

    private func protocolFailure(code: Int32) {
        if code == NGHTTP2_ERR_BAD_CLIENT_MAGIC.rawValue {
            logger.debug("not an HTTP/2 client", metadata: ["peer": "\(peer)"])
            close()
            return
        }
        logger.debug("HTTP/2 protocol error", metadata: ["peer": "\(peer)", "error": "\(String(cString: nghttp2_strerror(code)))"])
        // nghttp2 has queued a GOAWAY where the error calls for one; send it, then close.
        if let session { nghttp2_session_terminate_session(session, UInt32(NGHTTP2_PROTOCOL_ERROR.rawValue)) }
        closeAfterFlush = true
        flush()
    }

    func onWritable() {
        if readingPaused, let bufferEvent {
            readingPaused = false
            if let plainSocket {
                plainSocket.resumeReading()
            } else {
                bufferevent_enable(bufferEvent, Int16(EV_READ))
            }
        }
        flush()
    }

    func onEvent(_ what: Int16) {
        if what & Int16(BEV_EVENT_CONNECTED) != 0 {
            if isSecure, let bufferEvent {
                guard let ssl = bufferevent_openssl_get_ssl(bufferEvent), TLSContext.negotiatedH2(ssl) else {
                    logger.debug("TLS client did not negotiate h2", metadata: ["peer": "\(peer)"])
                    close()
                    return
                }
            }
            return
        }
        if what & Int16(BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT) != 0 {
            close()
        }
    }

    func requestFlush() {
        guard !flushRequested else { return }
        flushRequested = true
        loop.scheduleFlush(self)
    }

    func flushFromLoop() {
        flushRequested = false
        flush()
    }

    /// Moves frames from nghttp2 towards the socket, up to the high watermark: into the staging
    /// buffer of a plaintext connection with nothing queued, written when the loop turn ends
    /// (`PlainSocket`), else into the bufferevent's output.
    func flush() {
        flush(stagingAllowed: true)
    }

    func writeAtTurnEnd() {
        turnEndWriteScheduled = false
        guard !isClosed, let bufferEvent, let plainSocket else { return }
        plainSocket.write(handingRestTo: bufferevent_get_output(bufferEvent)!)
        // Frames past one staging buffer's worth, and a close that waited for the staged bytes,
        // go through the bufferevent's output.
        flush(stagingAllowed: false)
    }

    private func flush(stagingAllowed: Bool) {
        guard !isClosed, let session, let bufferEvent else { return }
        let output = bufferevent_get_output(bufferEvent)!
        let staging = stagingAllowed && evbuffer_get_length(output) == 0 ? plainSocket?.staging : nil
        let target = staging ?? output
        let high = configuration.connectionOutputHighWatermark
        while !outputAbandoned && evbuffer_get_length(target) < high {
            var data: UnsafePointer<UInt8>?
            let length = nghttp2_session_mem_send(session, &data)
            if length < 0 {
                close()
                return
            }
            // The frame-send callback of the previous frame may just have tripped an abuse
            // limit: this frame (and everything after it) stays unsent.
            if length == 0 || outputAbandoned { break }
            if !prefaceSettingsSent, let data {
                prefaceSettingsSent = true
                let frame = UnsafeBufferPointer(start: data, count: length)
                if let amended = Self.addingMaxConcurrentStreams(UInt32(configuration.maxConcurrentStreams), to: frame) {
                    evbuffer_add(target, amended, amended.count)
                    continue
                }
            }
            evbuffer_add(target, data, length)
        }
        if outputAbandoned {
            if let frame = abuseGoAway {
                abuseGoAway = nil
                evbuffer_add(target, frame, frame.count)
            }
            closeAfterFlush = true
        }
        if closeRequested {
            close()
            return
        }
        let staged = staging.map { evbuffer_get_length($0) } ?? 0
        if staged > 0, !turnEndWriteScheduled {
            turnEndWriteScheduled = true
            loop.scheduleTurnEndWrite(self)
        }
        if evbuffer_get_length(output) >= high, !readingPaused {
            // Output back-pressure: stop taking requests until the peer reads what we wrote.
            readingPaused = true
            if let plainSocket {
                plainSocket.pauseReading()
            } else {
                bufferevent_disable(bufferEvent, Int16(EV_READ))
            }
        }
        let finished = nghttp2_session_want_read(session) == 0 && nghttp2_session_want_write(session) == 0
        if finished || closeAfterFlush {
            if evbuffer_get_length(output) + staged == 0 {
                lingerThenClose()
            } else {
                // Closed by `onWritable` once the bufferevent has written everything, or by
                // `writeAtTurnEnd` when the socket took all that was staged.
                closeAfterFlush = true
                bufferevent_setwatermark(bufferEvent, Int16(EV_WRITE), 0, 0)
            }
        }
    }

    /// How long a connection whose output is all written waits for its peer to close.
    static let lingerLimit: Duration = .seconds(2)

    /// Closes once the peer has had what we wrote. Every byte of our output is with the kernel
    /// by now, but closing a socket with unread input (a slow reader's WINDOW_UPDATEs, its pings)
    /// makes the kernel reset the connection, which discards what the peer has not received yet:
    /// the end of the last responses of a graceful shutdown, a GOAWAY after an abuse limit (found
    /// by black-box testing). So a plaintext connection half-closes (FIN after the data); both
    /// kinds read and discard what still comes, and close at the peer's EOF or after `lingerLimit`.
    private func lingerThenClose() {
        guard lingerTimer == nil else { return }
        guard let bufferEvent else {
            close()
            return
        }
        ignoreInput = true
        keepaliveTimer = nil
        keepaliveTimeoutTimer = nil
        idleTimer = nil
        if let plainSocket {
            plainSocket.shutdownWrites()
            plainSocket.resumeReading()
        } else {
            bufferevent_enable(bufferEvent, Int16(EV_READ))
        }
        let timer = LoopTimer(loop: loop) { [unowned(unsafe) self] in self.close() }
        timer.schedule(after: Self.lingerLimit)
        lingerTimer = timer
    }

    // MARK: Connection management

    private func sendKeepalive() {
        guard let session, !isClosed, let interval = configuration.keepaliveInterval else { return }
        if !awaitingPingAck {
            awaitingPingAck = true
            nghttp2_submit_ping(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), nil)
            keepaliveTimeoutTimer?.schedule(after: configuration.keepaliveTimeout)
            flush()
        }
        keepaliveTimer?.schedule(after: interval)
    }

    func pingAcknowledged() {
        awaitingPingAck = false
        keepaliveTimeoutTimer?.cancel()
    }

    func handshakeCompleted() {
        handshakeTimer = nil
    }

    /// The client certificate the TLS handshake verified; nil over h2c or without one.
    var peerCertificate: PeerCertificate? {
        if !peerCertificateRead, isSecure, let bufferEvent, let ssl = bufferevent_openssl_get_ssl(bufferEvent) {
            peerCertificateRead = true
            cachedPeerCertificate = PeerCertificate.read(from: ssl)
        }
        return cachedPeerCertificate
    }

    /// GOAWAY with `code` and `debug`, then close once it is written. For an error code (abuse)
    /// the GOAWAY is the last frame: nothing nghttp2 still has queued is sent, and nothing more
    /// the client sends is read.
    func goAway(code: nghttp2_error_code, debug: String) {
        guard let session, !isClosed, !goAwaySent else { return }
        goAwaySent = true
        logger.info("sending GOAWAY", metadata: ["peer": "\(peer)", "reason": "\(debug)"])
        if code != NGHTTP2_NO_ERROR {
            abuseGoAway = Self.goAwayFrame(
                lastStreamID: nghttp2_session_get_last_proc_stream_id(session), code: code.rawValue, debug: debug)
            outputAbandoned = true
            ignoreInput = true
            closeAfterFlush = true
            requestFlush()
            return
        }
        var bytes = Array(debug.utf8)
        nghttp2_submit_goaway(
            session, UInt8(NGHTTP2_FLAG_NONE.rawValue), nghttp2_session_get_last_proc_stream_id(session),
            code.rawValue, &bytes, bytes.count)
        closeAfterFlush = true
        if code != NGHTTP2_NO_ERROR { ignoreInput = true }
        requestFlush()
    }

    /// `frame` (a SETTINGS frame without ACK on stream 0, as the server preface starts) with a
    /// SETTINGS_MAX_CONCURRENT_STREAMS entry appended; nil for any other frame.
    static func addingMaxConcurrentStreams(_ value: UInt32, to frame: UnsafeBufferPointer<UInt8>) -> [UInt8]? {
        guard frame.count >= 9 else { return nil }
        let length = Int(frame[0]) << 16 | Int(frame[1]) << 8 | Int(frame[2])
        let streamID = frame[5...8].reduce(0) { $0 << 8 | Int($1) }
        guard frame[3] == 0x04, frame[4] & 0x01 == 0, streamID == 0, length == frame.count - 9, length % 6 == 0 else {
            return nil
        }
        let newLength = length + 6
        var amended = [UInt8(newLength >> 16 & 0xFF), UInt8(newLength >> 8 & 0xFF), UInt8(newLength & 0xFF)]
        amended += frame[3..<frame.count]
        amended += [0x00, 0x03, UInt8(value >> 24), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)]
        return amended
    }

    /// A GOAWAY frame (RFC 9113 §6.8), written by hand because nghttp2's queue is bypassed.
    static func goAwayFrame(lastStreamID: Int32, code: UInt32, debug: String) -> [UInt8] {
        let debugBytes = Array(debug.utf8.prefix(256))
        let length = 8 + debugBytes.count
        var frame: [UInt8] = [UInt8(length >> 16 & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF), 0x07, 0, 0, 0, 0, 0]
        let last = UInt32(bitPattern: lastStreamID) & 0x7FFF_FFFF
        frame += [UInt8(last >> 24), UInt8(last >> 16 & 0xFF), UInt8(last >> 8 & 0xFF), UInt8(last & 0xFF)]
        frame += [UInt8(code >> 24), UInt8(code >> 16 & 0xFF), UInt8(code >> 8 & 0xFF), UInt8(code & 0xFF)]
        return frame + debugBytes
    }

    /// Graceful shutdown: GOAWAY(NO_ERROR) naming the last stream we took; the connection closes
    /// when its streams are done (or when `close` is called at the end of the grace period).
    func beginGracefulShutdown() {
        guard let session, !isClosed, !draining else { return }
        draining = true
        nghttp2_submit_goaway(
            session, UInt8(NGHTTP2_FLAG_NONE.rawValue), nghttp2_session_get_last_proc_stream_id(session),
            NGHTTP2_NO_ERROR.rawValue, nil, 0)
        if streams.isEmpty { closeAfterFlush = true }
        flush()
    }

    func resetStream(_ id: Int32, code: nghttp2_error_code) {
        guard let session else { return }
        nghttp2_submit_rst_stream(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), id, code.rawValue)
        requestFlush()
    }

    func streamStarted() {
        idleTimer?.cancel()
    }

    /// Bookkeeping after nghttp2 closed a stream (or the connection went away).
    func forget(_ stream: ServerStream) {
        receiveBudgetStreamEnded(stream)
        if stream.handlerStarted {
            core.activeCalls.wrappingSubtract(1, ordering: .relaxed)
            let status = stream.finalStatus ?? RPCStatus(.cancelled)
            let elapsed = ContinuousClock.now - stream.startTime
            let level: Logger.Level = status.code == .internal ? .info : .debug
            logger.log(
                level: level, "rpc finished",
                metadata: [
                    "method": "\(stream.context?.method.path ?? "?")", "status": "\(status.code.name)",
                    "duration_ms": "\(Double(elapsed.components.attoseconds) / 1e15 + Double(elapsed.components.seconds) * 1000)",
                    "trace_id": "\(stream.context?.trace.traceID ?? "")", "peer": "\(peer)",
                ])
        }
        if streams.isEmpty && !isClosed {
            if draining {
                closeAfterFlush = true
                requestFlush()
            } else if let idle = configuration.connectionIdleTimeout {
                idleTimer?.schedule(after: idle)
            }
        }
    }

    /// Frees everything; idempotent; never from inside an nghttp2 callback.
    func close() {
        guard !isClosed else { return }
        isClosed = true
        core.connectionsOpen.wrappingSubtract(1, ordering: .relaxed)
        let reason = RPCStatus(.unavailable, "connection closed")
        let open = streams
        streams = [:]
        for stream in open.values {
            stream.streamClosed(errorCode: NGHTTP2_CANCEL.rawValue, reason: reason)
            forget(stream)
        }
        handshakeTimer = nil
        keepaliveTimer = nil
        keepaliveTimeoutTimer = nil
        idleTimer = nil
        lingerTimer = nil
        if let session { nghttp2_session_del(session) }
        session = nil
        plainSocket = nil
        if let bufferEvent { bufferevent_free(bufferEvent) }
        bufferEvent = nil
        core.admission.release(client)
        core.registries[loop.index].connections[ObjectIdentifier(self)] = nil
    }
}

private func serverConnection(_ argument: UnsafeMutableRawPointer?) -> ServerConnection? {
    guard let argument else { return nil }
    return Unmanaged<ServerConnection>.fromOpaque(argument).takeUnretainedValue()
}

private func serverConnectionRead(_ bev: OpaquePointer?, _ argument: UnsafeMutableRawPointer?) {
    guard let connection = serverConnection(argument) else { return }
    connection.onReadable()
    connection.loop.runFlushes()
}

private func serverConnectionSocketReadable(_ fd: Int32, _ what: Int16, _ argument: UnsafeMutableRawPointer?) {
    guard let connection = serverConnection(argument) else { return }
    connection.onSocketReadable()
    connection.loop.runFlushes()
}

private func serverConnectionWrite(_ bev: OpaquePointer?, _ argument: UnsafeMutableRawPointer?) {
    serverConnection(argument)?.onWritable()
}

private func serverConnectionEvent(_ bev: OpaquePointer?, _ what: Int16, _ argument: UnsafeMutableRawPointer?) {
    guard let connection = serverConnection(argument) else { return }
    connection.onEvent(what)
    connection.loop.runFlushes()
}
