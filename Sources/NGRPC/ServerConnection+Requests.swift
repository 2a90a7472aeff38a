internal import CNGHTTP2
import Logging

/// How a server connection turns nghttp2 events into calls: stream creation, request
/// validation, handler start, inbound data with flow control, ends and resets, abuse counters.
/// All on the loop thread, called from the nghttp2 callbacks.
extension ServerConnection {
    func beginStream(id: Int32) {
        guard streams.count < configuration.maxConcurrentStreams else {
            // Our limit, not nghttp2's (see `setUp`): the stream is refused, the connection and
            // its calls live on. The client can retry it: nothing of it was processed.
            resetStream(id, code: NGHTTP2_REFUSED_STREAM)
            return
        }
        let stream = ServerStream(
            id: id, connection: self, maxReceiveMessageSize: configuration.maxReceiveMessageSize,
            inboundLimit: configuration.inboundBufferLimit, outboundLimit: configuration.outboundBufferLimit)
        streams[id] = stream
        // Unretained, for the header callback (a dictionary lookup per header field otherwise):
        // `streams` owns the stream until nghttp2 reports it closed, after which nghttp2 calls
        // nothing for it.
        if let session { nghttp2_session_set_stream_user_data(session, id, Unmanaged.passUnretained(stream).toOpaque()) }
        streamStarted()
    }

    /// The request header block is complete: validate it and start the handler, or answer at once.
    func requestHeadersComplete(streamID: Int32) {
        guard let session, let stream = streams[streamID] else { return }
        // Moved out, not copied: the stream has no use for it any more (saves a retain and a
        // release of every String in it per call).
        var head = RequestHead()
        swap(&head, &stream.head)
        if head.tooLarge {
            stream.submitTrailersOnly(
                session: session,
                status: RPCStatus(.resourceExhausted, "request headers exceed \(configuration.maxHeaderListSize) bytes or \(configuration.maxHeaderFieldCount) fields"),
                trailers: Metadata())
            return
        }
        guard head.method == "POST" else {
            stream.submitHTTPError(
                session: session, httpStatus: 405,
                status: RPCStatus(.unimplemented, "method \(head.method ?? "?") not allowed, gRPC uses POST"))
            return
        }
        guard head.hasGRPCContentType else {
            stream.submitHTTPError(
                session: session, httpStatus: 415,
                status: RPCStatus(.internal, "content-type \(head.contentType ?? "(none)") is not application/grpc"))
            return
        }
        if let codec = head.otherCodec {
            // A codec choice (gRPC over HTTP/2: "application/grpc+<codec>"); decoding a JSON body
            // as protobuf answered with a confusing INVALID_ARGUMENT.
            stream.submitTrailersOnly(
                session: session,
                status: RPCStatus(.unimplemented, "content-type application/grpc+\(codec): this server encodes messages as protobuf only "
                    + "(application/grpc or application/grpc+proto)"),
                trailers: Metadata())
            return
        }
        let path = head.path ?? ""
        guard let route = core.routes[path] else {
            stream.submitTrailersOnly(
                session: session, status: RPCStatus(.unimplemented, "Method not found: \(path)"), trailers: Metadata())
            return
        }
        if let encoding = head.encoding {
            guard let kind = GZip.kind(forEncoding: encoding) else {
                stream.submitTrailersOnly(
                    session: session,
                    status: RPCStatus(.unimplemented, "grpc-encoding \(encoding) is not supported (supported: \(GZip.acceptEncodingHeader))"),
                    trailers: Metadata())
                return
            }
            stream.deframer.decompressor = kind
        }
        var deadline: ContinuousClock.Instant?
        var timeout: Duration?
        if let text = head.timeout {
            guard let parsed = GRPCTimeout.parse(text) else {
                stream.submitTrailersOnly(
                    session: session, status: RPCStatus(.invalidArgument, "malformed grpc-timeout \(text)"),
                    trailers: Metadata())
                return
            }
            timeout = parsed
            deadline = ContinuousClock.now + parsed
        }
        if let bad = head.badBinaryHeader {
            logger.debug("dropped binary metadata that is not base64", metadata: ["key": "\(bad)", "peer": "\(peer)"])
        }
        if configuration.compressResponses && head.acceptsGzip { stream.responseEncoding = .gzip }
        let context = ServerContext(
            method: route.method, requestMetadata: head.metadata, deadline: deadline,
            trace: TraceContext.forIncomingCall(head.metadata), peer: peer, isSecure: isSecure,
            peerCertificate: peerCertificate)
        if let timeout {
            let timer = LoopTimer(loop: loop) { [unowned(unsafe) stream] in
                // The stream owns the timer and drops it when it closes, so it is alive here.
                stream.abort(RPCStatus(.deadlineExceeded, "deadline exceeded"))
            }
            timer.schedule(after: timeout)
            stream.deadlineTimer = timer
        }
        core.activeCalls.wrappingAdd(1, ordering: .relaxed)
        core.callsStarted.wrappingAdd(1, ordering: .relaxed)
        if let synchronous = route.synchronous {
            // Runs when the request ends (`requestEnded`); usually in this same read.
            stream.context = context
            stream.handlerStarted = true
            stream.synchronousCall = ServerStream.SynchronousCall(route: route, handler: synchronous)
        } else {
            stream.startHandler(
                route.handler, context: context, maxSendMessageSize: configuration.maxSendMessageSize,
                onLoop: route.onLoop, logger: logger)
        }
    }

    func dataReceived(streamID: Int32, bytes: UnsafeRawBufferPointer) {
        guard let session else { return }
        // The connection window is always returned: per-stream windows do the pushing back.
        nghttp2_session_consume_connection(session, bytes.count)
        guard let stream = streams[streamID] else { return }
        guard stream.handlerStarted, !stream.finished, !stream.aborted else {
            nghttp2_session_consume_stream(session, streamID, bytes.count)
            // Answered already: the rest of its request is never read.
            if stream.receiveReservation > 0 || stream.awaitingReceiveBudget || stream.serverCharge > 0 {
                receiveBudgetStreamEnded(stream)
            }
            return
        }
        if stream.synchronousCall == nil, !stream.undeframed.isEmpty || !stream.inbound.isWithinLimit {
            // The handler is behind: kept raw until it drains (`ServerConnection+UndeframedBytes`).
            stream.undeframed.append(contentsOf: bytes)
            stream.heldWindow += bytes.count
            stream.inbound.requestDrainNotification()
            return
        }
        do {
            if stream.synchronousCall != nil {
                try stream.receiveSynchronously(bytes)
            } else {
                let inbound = stream.inbound!
                try stream.deframer.process(bytes) { message in inbound.push(message) }
            }
        } catch {
            nghttp2_session_consume_stream(session, streamID, bytes.count)
            stream.abort(Self.status(for: error, limit: configuration.maxReceiveMessageSize))
            return
        }
        switch stream.aborted ? .refused : settleReceiveBudget(stream) {
        case .refused:
            nghttp2_session_consume_stream(session, streamID, bytes.count)
        case .hold:
            stream.heldWindow += bytes.count
        case .proceed:
            if stream.heldWindow == 0 && stream.inbound?.isWithinLimit ?? true {
                nghttp2_session_consume_stream(session, streamID, bytes.count)
            } else {
                stream.heldWindow += bytes.count
                stream.inbound?.requestDrainNotification()
            }
        }
    }

    static func status(for failure: MessageDeframer.Failure, limit: Int) -> RPCStatus {
        switch failure {
        case .tooLarge(let size):
            RPCStatus(.resourceExhausted, "received message of \(size) bytes exceeds the limit of \(limit) bytes")
        case .inflatesPastLimit:
            RPCStatus(.resourceExhausted, "received compressed message inflates past the limit of \(limit) bytes")
        case .compressedWithoutEncoding:
            RPCStatus(.internal, "compressed message received, but the call's grpc-encoding is identity (or absent)")
        case .invalidFlag(let flag):
            RPCStatus(.internal, "invalid message flag \(flag)")
        case .corruptCompressedData:
            RPCStatus(.internal, "compressed message could not be decompressed")
        }
    }

    /// The client half-closed its side.
    func requestEnded(streamID: Int32) {
        guard let stream = streams[streamID], stream.handlerStarted, !stream.finished, !stream.aborted else { return }
        if !stream.undeframed.isEmpty {
            stream.requestEndDeferred = true
            return
        }
        if stream.deframer.isIdle {
            if stream.synchronousCall != nil {
                stream.runSynchronousCall()
                return
            }
            stream.inbound.finish()
        } else {
            stream.abort(RPCStatus(.internal, "request ended in the middle of a message"))
        }
    }

    /// Our END_STREAM went out; if the client is still sending, tell it to stop (RST NO_ERROR),
    /// as gRPC servers do when a handler finishes before reading everything.
    func responseEnded(streamID: Int32) {
        guard let session, streams[streamID] != nil else { return }
        if nghttp2_session_get_stream_remote_close(session, streamID) == 0 {
            nghttp2_submit_rst_stream(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), streamID, NGHTTP2_NO_ERROR.rawValue)
        }
    }

    func streamClosed(streamID: Int32, errorCode: UInt32) {
        guard let stream = streams.removeValue(forKey: streamID) else { return }
        let reason =
            errorCode == NGHTTP2_NO_ERROR.rawValue
            ? RPCStatus(.cancelled, "stream closed before the call finished")
            : RPCStatus(.cancelled, "call cancelled (RST_STREAM \(errorCode))")
        stream.streamClosed(errorCode: errorCode, reason: reason)
        forget(stream)
    }

    /// Client PING: more than `maxPingStrikes` pings closer than the minimum interval without
    /// any data sent in between earn GOAWAY ENHANCE_YOUR_CALM "too_many_pings" (gRPC's policy).
    func pingReceived() {
        let now = ContinuousClock.now
        if let last = lastPingReceived, now - last < configuration.minPingIntervalWithoutData, !dataSentSinceLastPing {
            pingStrikes += 1
            if pingStrikes > configuration.maxPingStrikes {
                goAway(code: NGHTTP2_ENHANCE_YOUR_CALM, debug: "too_many_pings")
            }
        }
        lastPingReceived = now
        dataSentSinceLastPing = false
    }

    /// RST_STREAMs we send because of what the client did ("MadeYouReset"): a token bucket.
    func resetSent(errorCode: UInt32) {
        guard errorCode != NGHTTP2_NO_ERROR.rawValue else { return }
        let now = ContinuousClock.now
        let elapsed = now - resetTokensUpdated
        resetTokensUpdated = now
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        resetTokens = min(
            Double(configuration.serverResetBurst), resetTokens + seconds * Double(configuration.serverResetRatePerSecond))
        resetTokens -= 1
        if resetTokens < 0 {
            goAway(code: NGHTTP2_ENHANCE_YOUR_CALM, debug: "too_many_resets")
        }
    }
}
