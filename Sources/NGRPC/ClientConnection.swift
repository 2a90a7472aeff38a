internal import CLibevent
internal import CNGHTTP2
internal import CNGRPCShims

#if canImport(Glibc)
    import Glibc
#endif

/// One HTTP/2 client connection: a connecting bufferevent (plain or OpenSSL) and an nghttp2
/// client session, on the channel's loop.
///
/// Threading: loop thread only. Ownership: the channel's loop-side state keeps the strong
/// reference until `close`, which frees the session and the bufferevent (closing the socket and,
/// for TLS, the SSL) and then tells the channel through `onClose`. Streams point back weakly.
/// libevent and nghttp2 get unretained pointers; callbacks never free anything (`closeRequested`).
final class ClientConnection: LoopFlushable, @unchecked Sendable {
    let loop: EventLoop
    let configuration: ClientConfiguration
    private(set) var session: OpaquePointer?
    private var bufferEvent: OpaquePointer?
    var streams: [Int32: ClientStream] = [:]
    private var flushRequested = false
    var closeRequested = false
    private(set) var isClosed = false
    /// GOAWAY received or the connection failed: no new streams.
    var isUsable: Bool { !isClosed && !goAwayReceived }
    var goAwayReceived = false
    private let onClose: (ClientConnection) -> Void
    /// The server sent GOAWAY ENHANCE_YOUR_CALM "too_many_pings": our keepalive is too eager for it.
    let onTooManyPings: () -> Void
    private var keepaliveTimer: LoopTimer?
    private var keepaliveTimeoutTimer: LoopTimer?
    private var awaitingPingAck = false
    /// The TLS context every connection attempt makes its SSL from (nil: cleartext).
    private var tls: TLSContext?
    /// The host's addresses, tried in order until one connects (`localhost` is `::1` first on
    /// most systems while servers often listen on 127.0.0.1 only: the first alone failed).
    private var addresses: [SocketAddress.Resolved] = []
    private var addressIndex = 0
    /// BEV_EVENT_CONNECTED seen: a failure from here on is the connection's, not one address's.
    private var connected = false

    init(
        loop: EventLoop, configuration: ClientConfiguration, tls: TLSContext?,
        onTooManyPings: @escaping () -> Void = {}, onClose: @escaping (ClientConnection) -> Void
    ) {
        self.loop = loop
        self.configuration = configuration
        self.onTooManyPings = onTooManyPings
        self.onClose = onClose
        connect(tls: tls)
    }

    /// A bufferevent for one connection attempt (with a fresh SSL for TLS), its callbacks set;
    /// nil after `fail`.
    private func makeBufferEvent() -> OpaquePointer? {
        let options = Int32(BEV_OPT_CLOSE_ON_FREE.rawValue)
        var made: OpaquePointer?
        if let tls {
            guard let ssl = tls.makeSSL() else {
                fail("cannot create SSL")
                return nil
            }
            let serverName = configuration.tls?.serverName ?? configuration.host
            _ = cngrpc_ssl_set_sni(UnsafeMutableRawPointer(ssl), serverName)
            // The chain alone proves only that the CA signed *some* certificate: the name must
            // match too (DNS names against DNS SANs, an IP literal against IP SANs).
            if configuration.tls?.verifyCertificate == true, SSL_set1_host(ssl, serverName) != 1 {
                SSL_free(ssl)
                fail("cannot set the TLS host name to verify: \(serverName)")
                return nil
            }
            made = bufferevent_openssl_socket_new(
                loop.base, -1, ssl, BUFFEREVENT_SSL_CONNECTING, options | Int32(BEV_OPT_DEFER_CALLBACKS.rawValue))
            if made == nil { SSL_free(ssl) }
        } else {
            made = bufferevent_socket_new(loop.base, -1, options)
        }
        guard let made else {
            fail("cannot create bufferevent")
            return nil
        }
        let me = Unmanaged.passUnretained(self).toOpaque()
        bufferevent_setcb(made, clientConnectionRead, clientConnectionWrite, clientConnectionEvent, me)
        return made
    }

    private func connect(tls: TLSContext?) {
        self.tls = tls
        guard let bufferEvent = makeBufferEvent() else { return }
        self.bufferEvent = bufferEvent
        let me = Unmanaged.passUnretained(self).toOpaque()
        var session: OpaquePointer?
        guard nghttp2_session_client_new2(&session, clientSessionCallbacks.pointer, me, clientOption.pointer) == 0,
            let session
        else { return fail("cannot create HTTP/2 session") }
        self.session = session
        var settings = [
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_ENABLE_PUSH.rawValue), value: 0),
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE.rawValue),
                value: UInt32(configuration.initialStreamWindowSize)),
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE.rawValue),
                value: UInt32(configuration.maxHeaderListSize)),
        ]
        nghttp2_submit_settings(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), &settings, settings.count)
        nghttp2_session_set_local_window_size(
            session, UInt8(NGHTTP2_FLAG_NONE.rawValue), 0, Int32(clamping: configuration.connectionWindowSize))
        // Name resolution through getaddrinfo, blocking, once per connection (no evdns base).
        switch SocketAddress.resolveAll(host: configuration.host, port: configuration.port) {
        case .success(let resolved): addresses = resolved
        case .failure(let failure): return fail("cannot resolve host \(configuration.host): \(failure.message)")
        }
        guard startAttempt() else { return }
        if let interval = configuration.keepaliveInterval {
            // Owned by the connection and dropped in `close`, so `self` is alive when they fire.
            keepaliveTimer = LoopTimer(loop: loop) { [unowned(unsafe) self] in self.sendKeepalive() }
            keepaliveTimer?.schedule(after: interval)
            keepaliveTimeoutTimer = LoopTimer(loop: loop) { [unowned(unsafe) self] in
                self.failureReason = "keepalive PING not acknowledged within \(self.configuration.keepaliveTimeout)"
                self.close()
            }
        }
        flush()
    }

    private func sendKeepalive() {
        guard let session, !isClosed, let interval = configuration.keepaliveInterval else { return }
        if !awaitingPingAck {
            awaitingPingAck = true
            nghttp2_submit_ping(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), nil)
            keepaliveTimeoutTimer?.schedule(after: configuration.keepaliveTimeout)
            requestFlush()
        }
        keepaliveTimer?.schedule(after: interval)
    }

    func pingAcknowledged() {
        awaitingPingAck = false
        keepaliveTimeoutTimer?.cancel()
    }

    private var failureReason: String?

    /// Connects the current bufferevent to `addresses[addressIndex]`, going on to the next address
    /// while one cannot even start (no IPv6 on this host, say). False after `fail`.
    private func startAttempt() -> Bool {
        while let bufferEvent {
            let started = addresses[addressIndex].withPointer { bufferevent_socket_connect(bufferEvent, $0, $1) } == 0
            if started {
                // Close-on-exec, as the server's sockets are: a child process inheriting it would
                // keep the connection open after `close`.
                let fd = bufferevent_getfd(bufferEvent)
                if fd >= 0 { _ = fcntl(fd, F_SETFD, fcntl(fd, F_GETFD) | FD_CLOEXEC) }
                bufferevent_enable(bufferEvent, Int16(EV_READ | EV_WRITE))
                return true
            }
            let reason = String(cString: strerror(cngrpc_errno()))
            guard moveToNextAddress() else {
                fail("connection failed: \(reason)")
                return false
            }
        }
        return false
    }

    /// Replaces the bufferevent with a fresh one for the next address, carrying over what the
    /// session already queued (the preface, SETTINGS, calls started while connecting). False when
    /// no address is left.
    private func moveToNextAddress() -> Bool {
        guard addressIndex + 1 < addresses.count, let old = bufferEvent else { return false }
        addressIndex += 1
        guard let next = makeBufferEvent() else { return false }
        evbuffer_add_buffer(bufferevent_get_output(next), bufferevent_get_output(old))
        bufferevent_free(old)
        bufferEvent = next
        return true
    }

    private func fail(_ reason: String) {
        failureReason = reason
        closeRequested = true
        requestFlush()
    }

    /// Submits a call's request headers with its body provider.
    func start(_ stream: ClientStream, authority: String, scheme: String) {
        guard let session, isUsable else {
            stream.complete(RPCStatus(.unavailable, failureReason ?? "connection is not available"))
            return
        }
        var block = HeaderBlock()
        block.add(":method", "POST")
        block.add(":scheme", scheme)
        block.add(":path", stream.method.path)
        block.add(":authority", authority)
        block.add("content-type", "application/grpc")
        block.add("te", "trailers")
        block.add("user-agent", "ngrpc-swift/1.0")
        block.add("grpc-accept-encoding", GZip.acceptEncodingHeader)
        if let timeout = stream.options.timeout { block.add("grpc-timeout", GRPCTimeout.encode(timeout)) }
        block.add(stream.options.metadata)
        var provider = nghttp2_data_provider(
            source: nghttp2_data_source(ptr: Unmanaged.passUnretained(stream).toOpaque()),
            read_callback: clientStreamDataRead)
        let id = block.withNameValues { nghttp2_submit_request(session, nil, $0, $1, &provider, nil) }
        guard id > 0 else {
            stream.complete(RPCStatus(.unavailable, "cannot start stream: \(String(cString: nghttp2_strerror(id)))"))
            return
        }
        stream.streamID = id
        stream.connection = self
        streams[id] = stream
        if let timeout = stream.options.timeout {
            let timer = LoopTimer(loop: loop) { [unowned(unsafe) stream] in
                // The stream owns the timer and drops it when it completes, so it is alive here.
                stream.abort(RPCStatus(.deadlineExceeded, "deadline exceeded after \(timeout)"))
            }
            timer.schedule(after: timeout + configuration.deadlineTimerSlack)
            stream.deadlineTimer = timer
        }
        requestFlush()
    }

    func resetStream(_ id: Int32, code: nghttp2_error_code) {
        guard let session else { return }
        nghttp2_submit_rst_stream(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), id, code.rawValue)
        requestFlush()
    }

    // MARK: I/O

    func onReadable() {
        guard let bufferEvent, let session else { return }
        let input = bufferevent_get_input(bufferEvent)
        while !isClosed && !closeRequested {
            let length = evbuffer_get_contiguous_space(input)
            if length == 0 { break }
            guard let bytes = evbuffer_pullup(input, length) else { break }
            let result = nghttp2_session_mem_recv(session, bytes, length)
            if result < 0 {
                failureReason = "HTTP/2 error: \(String(cString: nghttp2_strerror(Int32(result))))"
                close()
                return
            }
            evbuffer_drain(input, length)
        }
        flush()
    }

    func onEvent(_ what: Int16) {
        if what & Int16(BEV_EVENT_CONNECTED) != 0 {
            connected = true
            // Without it Nagle holds back a call's DATA frame until the server ACKs its HEADERS,
            // and with delayed ACKs that is a 40 ms stall on some calls (the server side sets it too).
            if let bufferEvent {
                var noDelay: Int32 = 1
                setsockopt(bufferevent_getfd(bufferEvent), Int32(IPPROTO_TCP), TCP_NODELAY, &noDelay, socklen_t(MemoryLayout<Int32>.size))
            }
            if configuration.tls != nil, let bufferEvent {
                guard let ssl = bufferevent_openssl_get_ssl(bufferEvent), TLSContext.negotiatedH2(ssl) else {
                    failureReason = "server did not negotiate h2 over TLS"
                    close()
                    return
                }
            }
            flush()
            return
        }
        if what & Int16(BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT) != 0 {
            // Read once: it takes the errors off the bufferevent's queue.
            let tlsFailure = configuration.tls == nil ? nil : bufferEvent.flatMap(TLSContext.failure(of:))
            // A refused or unreachable address before any connection: on to the next one. A TLS
            // handshake that failed is the server's answer, not the address's.
            if !connected, failureReason == nil, what & Int16(BEV_EVENT_ERROR) != 0, tlsFailure == nil, moveToNextAddress() {
                if startAttempt() { flush() }
                return
            }
            if failureReason == nil {
                if let tlsFailure {
                    failureReason = "TLS handshake with \(configuration.host):\(configuration.port) failed: \(tlsFailure)"
                } else {
                    failureReason =
                        what & Int16(BEV_EVENT_EOF) != 0 ? "connection closed by the server" : "connection failed: \(TLSContext.lastError() == "unknown error" ? String(cString: strerror(cngrpc_errno())) : TLSContext.lastError())"
                }
            }
            close()
        }
    }

    func requestFlush() {
        guard !flushRequested, !isClosed else { return }
        flushRequested = true
        loop.scheduleFlush(self)
    }

    func flushFromLoop() {
        flushRequested = false
        flush()
    }

    func flush() {
        if closeRequested {
            close()
            return
        }
        guard !isClosed, let session, let bufferEvent else { return }
        let output = bufferevent_get_output(bufferEvent)
        while evbuffer_get_length(output) < 1024 * 1024 {
            var data: UnsafePointer<UInt8>?
            let length = nghttp2_session_mem_send(session, &data)
            if length < 0 {
                close()
                return
            }
            if length == 0 { break }
            evbuffer_add(output, data, length)
        }
        if closeRequested {
            close()
            return
        }
        if nghttp2_session_want_read(session) == 0 && nghttp2_session_want_write(session) == 0
            && evbuffer_get_length(output) == 0
        {
            close()
        }
    }

    /// GOAWAY: no new streams here. With an error code the server is about to drop the
    /// connection, so calls still open end UNAVAILABLE naming its reason (as grpc-core's
    /// "GOAWAY received; Error code: 11; Debug Text: too_many_pings") rather than "connection closed".
    func receivedGoAway(errorCode: UInt32, debug: String) {
        goAwayReceived = true
        guard errorCode != NGHTTP2_NO_ERROR.rawValue else { return }
        if failureReason == nil {
            let name = String(cString: nghttp2_http2_strerror(errorCode))
            failureReason = "server sent GOAWAY \(name) (error code \(errorCode))" + (debug.isEmpty ? "" : ": \(debug)")
        }
        if errorCode == NGHTTP2_ENHANCE_YOUR_CALM.rawValue && debug == "too_many_pings" { onTooManyPings() }
    }

    func streamClosed(streamID: Int32, errorCode: UInt32) {
        guard let stream = streams.removeValue(forKey: streamID) else { return }
        stream.isClosed = true
        let status: RPCStatus =
            switch errorCode {
            case NGHTTP2_NO_ERROR.rawValue: RPCStatus(.internal, "stream closed without a status")
            case NGHTTP2_REFUSED_STREAM.rawValue:
                // Also how nghttp2 ends our streams past a GOAWAY's last stream id: the server never saw them.
                RPCStatus(.unavailable, failureReason.map { "call not processed: \($0)" } ?? "stream refused by the server")
            case NGHTTP2_CANCEL.rawValue: RPCStatus(.cancelled, "stream cancelled by the server")
            case NGHTTP2_ENHANCE_YOUR_CALM.rawValue: RPCStatus(.resourceExhausted, "server said ENHANCE_YOUR_CALM")
            default: RPCStatus(.internal, "stream reset by the server (HTTP/2 error \(errorCode))")
            }
        stream.complete(status)
        stream.deadlineTimer = nil
        if goAwayReceived && streams.isEmpty { closeRequested = true }
    }

    /// Frees everything; idempotent; never inside an nghttp2 callback.
    func close() {
        guard !isClosed else { return }
        isClosed = true
        let status = RPCStatus(.unavailable, failureReason ?? "connection closed")
        let open = streams
        streams = [:]
        for stream in open.values {
            stream.isClosed = true
            stream.complete(status)
        }
        keepaliveTimer = nil
        keepaliveTimeoutTimer = nil
        if let session { nghttp2_session_del(session) }
        session = nil
        if let bufferEvent { bufferevent_free(bufferEvent) }
        bufferEvent = nil
        onClose(self)
    }
}

/// Client session options: window updates are ours (the caller's reading pace holds the window).
struct SessionOption: @unchecked Sendable {
    let pointer: OpaquePointer
}

let clientOption: SessionOption = {
    var option: OpaquePointer?
    nghttp2_option_new(&option)
    nghttp2_option_set_no_auto_window_update(option, 1)
    nghttp2_option_set_max_continuations(option, 8)
    nghttp2_option_set_max_settings(option, 32)
    return SessionOption(pointer: option!)
}()

private func clientConnection(_ argument: UnsafeMutableRawPointer?) -> ClientConnection? {
    guard let argument else { return nil }
    return Unmanaged<ClientConnection>.fromOpaque(argument).takeUnretainedValue()
}

private func clientConnectionRead(_ bev: OpaquePointer?, _ argument: UnsafeMutableRawPointer?) {
    guard let connection = clientConnection(argument) else { return }
    connection.onReadable()
    connection.loop.runFlushes()
}

private func clientConnectionWrite(_ bev: OpaquePointer?, _ argument: UnsafeMutableRawPointer?) {
    clientConnection(argument)?.flush()
}

private func clientConnectionEvent(_ bev: OpaquePointer?, _ what: Int16, _ argument: UnsafeMutableRawPointer?) {
    guard let connection = clientConnection(argument) else { return }
    connection.onEvent(what)
    connection.loop.runFlushes()
}
