internal import CNGHTTP2

/// The nghttp2 callbacks of client sessions: recover the connection from `user_data`
/// (unretained, see `ClientConnection`) and forward; none frees anything.

let clientSessionCallbacks: SessionCallbacks = {
    var callbacks: OpaquePointer?
    nghttp2_session_callbacks_new(&callbacks)
    guard let callbacks else { fatalError("nghttp2_session_callbacks_new failed") }
    nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks, clientOnBeginHeaders)
    nghttp2_session_callbacks_set_on_header_callback(callbacks, clientOnHeader)
    nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, clientOnFrameRecv)
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, clientOnDataChunk)
    nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, clientOnStreamClose)
    return SessionCallbacks(pointer: callbacks)
}()

private func connection(_ userData: UnsafeMutableRawPointer?) -> ClientConnection? {
    guard let userData else { return nil }
    return Unmanaged<ClientConnection>.fromOpaque(userData).takeUnretainedValue()
}

private let callbackFailure = Int32(NGHTTP2_ERR_CALLBACK_FAILURE.rawValue)

private func clientOnBeginHeaders(
    _ session: OpaquePointer?, _ frame: UnsafePointer<nghttp2_frame>?, _ userData: UnsafeMutableRawPointer?
) -> Int32 {
    guard let connection = connection(userData), let frame else { return callbackFailure }
    if frame.pointee.hd.type == UInt8(NGHTTP2_HEADERS.rawValue), let stream = connection.streams[frame.pointee.hd.stream_id] {
        stream.head = ResponseHead()
    }
    return 0
}

private func clientOnHeader(
    _ session: OpaquePointer?, _ frame: UnsafePointer<nghttp2_frame>?, _ name: UnsafePointer<UInt8>?, _ nameLength: Int,
    _ value: UnsafePointer<UInt8>?, _ valueLength: Int, _ flags: UInt8, _ userData: UnsafeMutableRawPointer?
) -> Int32 {
    guard let connection = connection(userData), let frame, let name, let value else { return callbackFailure }
    guard frame.pointee.hd.type == UInt8(NGHTTP2_HEADERS.rawValue),
        let stream = connection.streams[frame.pointee.hd.stream_id]
    else { return 0 }
    stream.head.add(
        name: String(decoding: UnsafeBufferPointer(start: name, count: nameLength), as: UTF8.self),
        value: String(decoding: UnsafeBufferPointer(start: value, count: valueLength), as: UTF8.self))
    if stream.head.listSize > connection.configuration.maxHeaderListSize {
        return Int32(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue)
    }
    return 0
}

private func clientOnFrameRecv(
    _ session: OpaquePointer?, _ frame: UnsafePointer<nghttp2_frame>?, _ userData: UnsafeMutableRawPointer?
) -> Int32 {
    guard let connection = connection(userData), let frame else { return callbackFailure }
    let header = frame.pointee.hd
    let endStream = header.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0
    switch UInt32(header.type) {
    case NGHTTP2_HEADERS.rawValue:
        guard let stream = connection.streams[header.stream_id] else { break }
        connection.headersReceived(stream, endStream: endStream)
    case NGHTTP2_DATA.rawValue:
        guard endStream, let stream = connection.streams[header.stream_id] else { break }
        // END_STREAM on DATA: the server ended without trailers.
        stream.complete(RPCStatus(.internal, "response ended without trailers"))
    case NGHTTP2_GOAWAY.rawValue:
        let goAway = frame.pointee.goaway
        let debug = goAway.opaque_data.map {
            String(decoding: UnsafeBufferPointer(start: $0, count: goAway.opaque_data_len), as: UTF8.self)
        }
        connection.receivedGoAway(errorCode: goAway.error_code, debug: debug ?? "")
    case NGHTTP2_PING.rawValue where header.flags & UInt8(NGHTTP2_FLAG_ACK.rawValue) != 0:
        connection.pingAcknowledged()
    default:
        break
    }
    return 0
}

private func clientOnDataChunk(
    _ session: OpaquePointer?, _ flags: UInt8, _ streamID: Int32, _ data: UnsafePointer<UInt8>?, _ length: Int,
    _ userData: UnsafeMutableRawPointer?
) -> Int32 {
    guard let connection = connection(userData), let data else { return callbackFailure }
    connection.dataReceived(streamID: streamID, bytes: UnsafeRawBufferPointer(start: data, count: length))
    return 0
}

private func clientOnStreamClose(
    _ session: OpaquePointer?, _ streamID: Int32, _ errorCode: UInt32, _ userData: UnsafeMutableRawPointer?
) -> Int32 {
    guard let connection = connection(userData) else { return callbackFailure }
    connection.streamClosed(streamID: streamID, errorCode: errorCode)
    return 0
}

extension ClientConnection {
    /// A response header block is complete: the response headers, trailers, or a trailers-only response.
    func headersReceived(_ stream: ClientStream, endStream: Bool) {
        let head = stream.head
        stream.head = ResponseHead()
        if !stream.headers.isCompleted && !endStream {
            if let status = head.httpStatus, status != 200 {
                stream.abort(ResponseHead.statusForHTTP(status))
                return
            }
            if let contentType = head.contentType, !RequestHead.isGRPCContentType(contentType) {
                stream.abort(RPCStatus(.unknown, "response content-type \(contentType) is not gRPC"))
                return
            }
            if let encoding = head.encoding {
                guard let kind = GZip.kind(forEncoding: encoding) else {
                    stream.abort(RPCStatus(.internal, "response grpc-encoding \(encoding) is not supported"))
                    return
                }
                stream.deframer.decompressor = kind
            }
            stream.headers.complete(.success(head.metadata))
            return
        }
        guard endStream else { return }
        if !stream.deframer.isIdle {
            stream.complete(RPCStatus(.internal, "response ended in the middle of a message"))
            return
        }
        let status = head.status
        if !stream.headers.isCompleted && status.code == .ok {
            // Trailers-only OK: no headers block of its own.
            stream.headers.complete(.success(Metadata()))
        }
        stream.complete(status, trailers: head.metadata)
    }

    func dataReceived(streamID: Int32, bytes: UnsafeRawBufferPointer) {
        guard let session else { return }
        nghttp2_session_consume_connection(session, bytes.count)
        guard let stream = streams[streamID], !stream.status.isCompleted else {
            nghttp2_session_consume_stream(session, streamID, bytes.count)
            return
        }
        do {
            let inbound = stream.inbound!
            try stream.deframer.process(bytes) { message in inbound.push(message) }
        } catch {
            nghttp2_session_consume_stream(session, streamID, bytes.count)
            let status: RPCStatus =
                switch error {
                case .tooLarge(let size):
                    RPCStatus(.resourceExhausted, "response message of \(size) bytes exceeds the limit of \(stream.options.maxReceiveMessageSize) bytes")
                case .inflatesPastLimit:
                    RPCStatus(.resourceExhausted, "compressed response message inflates past the limit of \(stream.options.maxReceiveMessageSize) bytes")
                default:
                    RPCStatus(.internal, "malformed response message: \(error)")
                }
            stream.abort(status)
            return
        }
        if stream.heldWindow == 0 && stream.inbound.isWithinLimit {
            nghttp2_session_consume_stream(session, streamID, bytes.count)
        } else {
            stream.heldWindow += bytes.count
            stream.inbound.requestDrainNotification()
        }
    }
}
