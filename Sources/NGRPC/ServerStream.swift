internal import CNGHTTP2
import Logging
import Synchronization

/// One gRPC call on a server connection: request head, de-framing, the handler task and the
/// two message queues between the loop and the handler.
///
/// Threading: everything except `inbound`, `outbound` and `windowWake` is touched only on the
/// connection's loop thread (callbacks, `runOnLoop`, timers). The handler task sees the stream
/// only through `ServerStreamSource` / `ServerStreamSink`, which use the thread-safe queues.
///
/// Ownership: the connection's `streams` dictionary owns the stream until nghttp2 reports it
/// closed; the handler task keeps it alive (not its C state) until the handler returns. The
/// outbound queue's reference back to the stream is dropped in `streamClosed`.
final class ServerStream: LoopTask, @unchecked Sendable {
    let id: Int32
    let loop: EventLoop
    /// Valid while `isClosed` is false: the connection closes every stream before it goes away.
    /// (Not weak: a weak reference puts a side table on the connection and slows every retain.)
    unowned(unsafe) let connection: ServerConnection
    var head = RequestHead()
    var deframer: MessageDeframer
    /// Made when the handler starts as a task (`startHandler`): a synchronous call never needs it.
    private(set) var inbound: InboundMessageQueue!
    private let inboundLimit: Int
    private(set) var outbound: OutboundMessageQueue!
    var context: ServerContext?
    var handlerTask: Task<Void, Never>?
    /// Set while a synchronous unary call waits for its request to end (loop thread only).
    var synchronousCall: SynchronousCall?
    var deadlineTimer: LoopTimer?
    var responseEncoding: GZip.Kind?
    /// Received DATA bytes whose stream window we have not returned (the handler is behind, or
    /// the stream waits for receive budget).
    var heldWindow = 0
    /// Declared length of the partial message this stream has reserved on its connection
    /// (`ServerConnection+ReceiveBudget.swift`), and whether it is waiting to.
    var receiveReservation = 0
    var awaitingReceiveBudget = false
    /// Bytes of its partial message counted in the server-wide total.
    var serverCharge = 0
    /// Request bytes received while the handler's queue was over its limit, not de-framed yet, and
    /// whether the request's end came after them (`ServerConnection+UndeframedBytes.swift`).
    var undeframed: [UInt8] = []
    var requestEndDeferred = false
    var headersSubmitted = false
    var dataDeferred = false
    /// Our END_STREAM (trailers or a trailers-only / HTTP error response) has been submitted.
    var finished = false
    var requestEnded = false
    var isClosed = false
    var handlerStarted = false
    /// The transport ended the call (`abort`): further request bytes are ignored.
    var aborted = false
    private var abortStatus: RPCStatus?
    var finalStatus: RPCStatus?
    let startTime = ContinuousClock.now

    init(id: Int32, connection: ServerConnection, maxReceiveMessageSize: Int, inboundLimit: Int, outboundLimit: Int) {
        self.id = id
        self.loop = connection.loop
        self.connection = connection
        deframer = MessageDeframer(maxMessageSize: maxReceiveMessageSize)
        self.inboundLimit = inboundLimit
        outbound = OutboundMessageQueue(limit: outboundLimit, loop: loop, owner: self)
    }

    // MARK: Loop side

    /// Applies what the handler queued: window to return, headers, data to resume, the end.
    func runOnLoop() {
        let snapshot = outbound.beginLoopRun()
        guard !isClosed, let session = connection.session else { return }
        if !undeframed.isEmpty && !aborted && inbound?.isWithinLimit ?? true { connection.deframeUndeframedBytes(of: self) }
        if heldWindow > 0 && !awaitingReceiveBudget && undeframed.isEmpty && inbound?.isWithinLimit ?? true {
            nghttp2_session_consume_stream(session, id, heldWindow)
            heldWindow = 0
        }
        if !finished {
            if !headersSubmitted {
                if case .status(let status, let trailers) = snapshot.end, !snapshot.hasData,
                    snapshot.headersRequested == nil
                {
                    submitTrailersOnly(session: session, status: status, trailers: trailers)
                } else if snapshot.hasData || snapshot.headersRequested != nil || snapshot.end != nil {
                    submitHeaders(session: session, extra: snapshot.headersRequested)
                }
            } else if let abortStatus,
                min(nghttp2_session_get_stream_remote_window_size(session, id), nghttp2_session_get_remote_window_size(session)) <= 0
            {
                // Trailers leave through the data callback, which nghttp2 does not call while the
                // client's window is shut: a client that stopped reading gets RST_STREAM instead.
                finish(with: abortStatus)
                connection.resetStream(id, code: NGHTTP2_CANCEL)
            } else if dataDeferred && (snapshot.hasData || snapshot.end != nil) {
                dataDeferred = false
                nghttp2_session_resume_data(session, id)
            }
        }
        connection.requestFlush()
    }

    private func responseHeaderBlock() -> HeaderBlock {
        var block = HeaderBlock()
        block.add(":status", "200")
        block.add("content-type", "application/grpc")
        block.add("grpc-accept-encoding", GZip.acceptEncodingHeader)
        return block
    }

    private func submitHeaders(session: OpaquePointer, extra: Metadata?) {
        var provider = nghttp2_data_provider(
            source: nghttp2_data_source(ptr: Unmanaged.passUnretained(self).toOpaque()),
            read_callback: serverStreamDataRead)
        let responseHeaders = context?.responseHeaders ?? Metadata()
        let result: Int32
        if responseEncoding == nil && responseHeaders.isEmpty && (extra?.isEmpty ?? true) {
            // Nothing call-specific: the static list (most calls).
            let list = StaticHeaderList.response
            result = nghttp2_submit_response(session, id, list.fields, list.count, &provider)
        } else {
            var block = responseHeaderBlock()
            if let responseEncoding { block.add("grpc-encoding", responseEncoding.rawValue) }
            block.add(responseHeaders)
            if let extra { block.add(extra) }
            result = block.withNameValues { nghttp2_submit_response(session, id, $0, $1, &provider) }
        }
        if result == 0 {
            headersSubmitted = true
        } else {
            connection.resetStream(id, code: NGHTTP2_INTERNAL_ERROR)
        }
    }

    /// A response that is only a HEADERS frame with END_STREAM: immediate errors.
    func submitTrailersOnly(session: OpaquePointer, status: RPCStatus, trailers: Metadata) {
        let limit = Self.peerHeaderListLimit(session)
        var base = responseHeaderBlock()
        if let context { base.add(context.responseHeaders) }
        var block = Self.statusBlock(base: base, status: status, trailers: trailers, limit: limit)
        if block.listSize > limit, let context, !context.responseHeaders.isEmpty {
            // The handler's response headers alone do not fit: they go, so the status arrives
            // (they stayed, and the client saw RESOURCE_EXHAUSTED or INTERNAL instead).
            block = Self.statusBlock(base: responseHeaderBlock(), status: status, trailers: trailers, limit: limit)
        }
        finish(with: status)
        if block.withNameValues({ nghttp2_submit_response(session, id, $0, $1, nil) }) != 0 {
            connection.resetStream(id, code: NGHTTP2_INTERNAL_ERROR)
        }
    }

    /// An HTTP-level refusal (405, 415): not gRPC at all, so only `:status` matters, but the
    /// gRPC status is included for clients that look for it.
    func submitHTTPError(session: OpaquePointer, httpStatus: Int, status: RPCStatus) {
        var block = HeaderBlock()
        block.add(":status", String(httpStatus))
        block.add("content-type", "application/grpc")
        Self.addStatus(status, to: &block)
        finish(with: status)
        if block.withNameValues({ nghttp2_submit_response(session, id, $0, $1, nil) }) != 0 {
            connection.resetStream(id, code: NGHTTP2_INTERNAL_ERROR)
        }
    }

    static func addStatus(_ status: RPCStatus, to block: inout HeaderBlock) {
        block.add("grpc-status", String(status.code.rawValue))
        if !status.message.isEmpty { block.add("grpc-message", PercentEncoding.encodeForTrailer(status.message)) }
        if let details = status.details { block.add("grpc-status-details-bin", Base64.encode(details, padded: false)) }
    }

    private func finish(with status: RPCStatus) {
        finished = true
        finalStatus = status
        deadlineTimer = nil
    }

    /// nghttp2 asks for up to `length` bytes of DATA payload.
    func readData(session: OpaquePointer, into buffer: UnsafeMutablePointer<UInt8>, length: Int, flags: UnsafeMutablePointer<UInt32>) -> Int {
        let (count, end) = outbound.read(into: UnsafeMutableRawBufferPointer(start: buffer, count: length))
        guard let end else {
            if count == 0 {
                dataDeferred = true
                return Int(NGHTTP2_ERR_DEFERRED.rawValue)
            }
            return count
        }
        flags.pointee |= NGHTTP2_DATA_FLAG_EOF.rawValue
        if case .status(let status, let trailers) = end {
            finish(with: status)
            let submitted: Int32
            if status.code == .ok && status.message.isEmpty && status.details == nil && trailers.isEmpty {
                let list = StaticHeaderList.okTrailers
                submitted = nghttp2_submit_trailer(session, id, list.fields, list.count)
            } else {
                let block = Self.statusBlock(base: HeaderBlock(), status: status, trailers: trailers, limit: Self.peerHeaderListLimit(session))
                submitted = block.withNameValues { nghttp2_submit_trailer(session, id, $0, $1) }
            }
            if submitted == 0 {
                flags.pointee |= NGHTTP2_DATA_FLAG_NO_END_STREAM.rawValue
            }
        }
        return count
    }

    /// Ends the call from the transport's side (deadline, broken limit, bad message): the handler
    /// is cancelled and the client gets `status`.
    func abort(_ status: RPCStatus) {
        guard !finished, !isClosed, !aborted else { return }
        aborted = true
        abortStatus = status
        synchronousCall = nil
        connection.receiveBudgetStreamEnded(self)
        // The queue first: once the handler is cancelled it may return at once, and its OK must
        // not overtake this status.
        outbound.terminate(status, end: .status(status, Metadata()))
        inbound?.fail(status)
        context?.cancel(status)
        handlerTask?.cancel()
    }

    /// nghttp2 closed the stream (normally, or by RST_STREAM from either side, or the connection).
    func streamClosed(errorCode: UInt32, reason: RPCStatus) {
        guard !isClosed else { return }
        isClosed = true
        deadlineTimer = nil
        if !finished || errorCode != NGHTTP2_NO_ERROR.rawValue {
            context?.cancel(reason)
            handlerTask?.cancel()
            if !finished { finalStatus = reason }
        }
        // Not `fail`: messages received before the close stay readable (the handler may still
        // apply them; it is cancelled, and reads the reason after them).
        if !undeframed.isEmpty && !aborted { connection.deframeUndeframedBytes(of: self, closing: true) }
        inbound?.close(reason)
        outbound.detach(reason)
    }

    // MARK: Synchronous unary calls

    /// A unary call answered inline on the loop (`SynchronousHandlers.swift`): its handlers and
    /// the request messages received so far.
    struct SynchronousCall {
        let route: ServerCore.WrappedRoute
        /// `route.synchronous`, unwrapped.
        let handler: RawSynchronousHandler
        /// The one request message, once received (a second one ends the call).
        var request: [UInt8]?
    }

    /// Request bytes of a synchronous call. The window goes back at once: the deframer holds at
    /// most one message's bytes, and a second message ends the call.
    func receiveSynchronously(_ bytes: UnsafeRawBufferPointer) throws(MessageDeframer.Failure) {
        var several = false
        try deframer.process(bytes) { message in
            if synchronousCall?.request == nil {
                synchronousCall?.request = message
            } else {
                several = true
            }
        }
        if several {
            synchronousCall = nil
            abort(RPCStatus(.unimplemented, "expected one request message, received several"))
        }
    }

    /// The request ended: runs the synchronous handler and submits its whole response, or hands
    /// the call to the async handler when the synchronous one declines.
    func runSynchronousCall() {
        guard let call = synchronousCall, let context else { return }
        synchronousCall = nil
        let maxSendMessageSize = connection.configuration.maxSendMessageSize
        var framed: [UInt8]?
        let status: RPCStatus
        if let request = call.request {
            do {
                guard let response = try call.handler(request, context) else {
                    startHandler(
                        call.route.handler, context: context, maxSendMessageSize: maxSendMessageSize,
                        onLoop: call.route.onLoop, logger: connection.logger, received: request)
                    return
                }
                framed = try ServerStreamSink.frame(response, maxSendMessageSize: maxSendMessageSize, encoding: responseEncoding)
                status = .ok
            } catch let thrown as RPCStatus {
                status = thrown
            } catch {
                connection.logger.error(
                    "handler failed", metadata: ["method": "\(context.method.path)", "error": "\(error)",
                        "trace_id": "\(context.trace.traceID)"])
                status = RPCStatus(.internal, "internal error")
            }
        } else {
            status = RPCStatus(.unimplemented, "expected one request message, received none")
        }
        outbound.complete(framed, end: .status(status, context.trailers))
        runOnLoop()
    }

    // MARK: Handler side

    /// Starts the handler as a Swift task; loop thread.
    func startHandler(
        _ handler: @escaping RawHandler, context: ServerContext, maxSendMessageSize: Int, onLoop: Bool, logger: Logger,
        received: [UInt8]? = nil
    ) {
        self.context = context
        handlerStarted = true
        let inbound = InboundMessageQueue(limit: inboundLimit, loop: loop, owner: self)
        self.inbound = inbound
        if let received {
            // A declined synchronous call: its whole request is already here.
            inbound.push(received)
            inbound.finish()
        }
        let source = ServerStreamSource(queue: inbound)
        let sink = ServerStreamSink(
            queue: outbound, maxSendMessageSize: maxSendMessageSize, encoding: responseEncoding)
        let outbound = self.outbound!
        let core = connection.core
        core.runningHandlers.wrappingAdd(1, ordering: .relaxed)
        let operation: @Sendable () async -> Void = {
            defer { core.runningHandlers.wrappingSubtract(1, ordering: .relaxed) }
            let status: RPCStatus
            do {
                try await handler(source, sink, context)
                status = .ok
            } catch let thrown as RPCStatus {
                status = thrown
            } catch {
                if let cancellation = context.cancellation {
                    status = cancellation
                } else {
                    logger.error(
                        "handler failed", metadata: ["method": "\(context.method.path)", "error": "\(error)",
                            "trace_id": "\(context.trace.traceID)"])
                    status = RPCStatus(.internal, "internal error")
                }
            }
            outbound.finish(.status(status, context.trailers))
        }
        handlerTask = onLoop ? Task(executorPreference: loop.taskExecutor, operation: operation) : Task(operation: operation)
    }
}

/// The handler's view of the request messages.
struct ServerStreamSource: RawMessageSource {
    let queue: InboundMessageQueue

    func next() async throws -> [UInt8]? {
        try await queue.next()
    }
}

/// The handler's way to respond: frames messages and queues them for the loop.
struct ServerStreamSink: RawMessageSink {
    let queue: OutboundMessageQueue
    let maxSendMessageSize: Int
    let encoding: GZip.Kind?

    func sendHeaders(_ metadata: Metadata) async throws {
        try queue.requestHeaders(metadata)
    }

    func send(_ message: [UInt8]) async throws {
        try await queue.send(Self.frame(message, maxSendMessageSize: maxSendMessageSize, encoding: encoding))
    }

    /// A response message checked against the send limit, compressed when the call says so, framed.
    static func frame(_ message: [UInt8], maxSendMessageSize: Int, encoding: GZip.Kind?) throws -> [UInt8] {
        guard message.count <= maxSendMessageSize else {
            throw RPCStatus(
                .resourceExhausted,
                "response message of \(message.count) bytes exceeds the limit of \(maxSendMessageSize) bytes")
        }
        if let encoding {
            return MessageFramer.frame(GZip.deflate(message, kind: encoding), compressed: true)
        }
        return MessageFramer.frame(message)
    }
}

/// nghttp2 data source read callback for server responses; `source.ptr` is the stream
/// (unretained: the connection's dictionary keeps it alive while nghttp2 can call this).
func serverStreamDataRead(
    _ session: OpaquePointer?, _ streamID: Int32, _ buffer: UnsafeMutablePointer<UInt8>?, _ length: Int,
    _ flags: UnsafeMutablePointer<UInt32>?, _ source: UnsafeMutablePointer<nghttp2_data_source>?,
    _ userData: UnsafeMutableRawPointer?
) -> Int {
    guard let session, let buffer, let flags, let pointer = source?.pointee.ptr else {
        return Int(NGHTTP2_ERR_CALLBACK_FAILURE.rawValue)
    }
    return Unmanaged<ServerStream>.fromOpaque(pointer).takeUnretainedValue()
        .readData(session: session, into: buffer, length: length, flags: flags)
}
