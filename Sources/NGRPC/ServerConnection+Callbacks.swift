internal import CNGHTTP2

/// The nghttp2 callbacks of server sessions. Each recovers the connection from `user_data`
/// (unretained, see `ServerConnection`) and forwards; none of them frees anything.

/// Shared callback table; nghttp2 copies it into every session.
struct SessionCallbacks: @unchecked Sendable {
    let pointer: OpaquePointer
}

let serverSessionCallbacks: SessionCallbacks = {
    var callbacks: OpaquePointer?
    nghttp2_session_callbacks_new(&callbacks)
    guard let callbacks else { fatalError("nghttp2_session_callbacks_new failed") }
    nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks, serverOnBeginHeaders)
    nghttp2_session_callbacks_set_on_header_callback(callbacks, serverOnHeader)
    nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, serverOnFrameRecv)
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, serverOnDataChunk)
    nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, serverOnStreamClose)
    nghttp2_session_callbacks_set_on_frame_send_callback(callbacks, serverOnFrameSend)
    return SessionCallbacks(pointer: callbacks)
}()

private func connection(_ userData: UnsafeMutableRawPointer?) -> ServerConnection? {
    guard let userData else { return nil }
    return Unmanaged<ServerConnection>.fromOpaque(userData).takeUnretainedValue()
}

private let callbackFailure = Int32(NGHTTP2_ERR_CALLBACK_FAILURE.rawValue)

private func serverOnBeginHeaders(
    _ session: OpaquePointer?, _ frame: UnsafePointer<nghttp2_frame>?, _ userData: UnsafeMutableRawPointer?
) -> Int32 {
    guard let connection = connection(userData), let frame else { return callbackFailure }
    guard frame.pointee.hd.type == UInt8(NGHTTP2_HEADERS.rawValue),
        frame.pointee.headers.cat == NGHTTP2_HCAT_REQUEST
    else { return 0 }
    connection.beginStream(id: frame.pointee.hd.stream_id)
    return 0
}

private func serverOnHeader(
    _ session: OpaquePointer?, _ frame: UnsafePointer<nghttp2_frame>?, _ name: UnsafePointer<UInt8>?, _ nameLength: Int,
    _ value: UnsafePointer<UInt8>?, _ valueLength: Int, _ flags: UInt8, _ userData: UnsafeMutableRawPointer?
) -> Int32 {
    guard let connection = connection(userData), let frame, let name, let value else { return callbackFailure }
    guard frame.pointee.hd.type == UInt8(NGHTTP2_HEADERS.rawValue),
        frame.pointee.headers.cat == NGHTTP2_HCAT_REQUEST,
        let pointer = nghttp2_session_get_stream_user_data(session, frame.pointee.hd.stream_id)
    else { return 0 }
    // Set by `beginStream`; the connection's `streams` keeps the stream alive (see there).
    let stream = Unmanaged<ServerStream>.fromOpaque(pointer).takeUnretainedValue()
    stream.head.add(
        name: UnsafeBufferPointer(start: name, count: nameLength), value: UnsafeBufferPointer(start: value, count: valueLength),
        maxListSize: connection.configuration.maxHeaderListSize,
        maxFieldCount: connection.configuration.maxHeaderFieldCount)
    return 0
}

private func serverOnFrameRecv(
    _ session: OpaquePointer?, _ frame: UnsafePointer<nghttp2_frame>?, _ userData: UnsafeMutableRawPointer?
) -> Int32 {
    guard let connection = connection(userData), let frame else { return callbackFailure }
    let header = frame.pointee.hd
    let endStream = header.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0
    switch UInt32(header.type) {
    case NGHTTP2_HEADERS.rawValue:
        if frame.pointee.headers.cat == NGHTTP2_HCAT_REQUEST {
            connection.requestHeadersComplete(streamID: header.stream_id)
        }
        if endStream { connection.requestEnded(streamID: header.stream_id) }
    case NGHTTP2_DATA.rawValue:
        if endStream { connection.requestEnded(streamID: header.stream_id) }
    case NGHTTP2_SETTINGS.rawValue:
        connection.handshakeCompleted()
    case NGHTTP2_PING.rawValue:
        if header.flags & UInt8(NGHTTP2_FLAG_ACK.rawValue) != 0 {
            connection.pingAcknowledged()
        } else {
            connection.pingReceived()
        }
    default:
        break
    }
    return 0
}

private func serverOnDataChunk(
    _ session: OpaquePointer?, _ flags: UInt8, _ streamID: Int32, _ data: UnsafePointer<UInt8>?, _ length: Int,
    _ userData: UnsafeMutableRawPointer?
) -> Int32 {
    guard let connection = connection(userData), let data else { return callbackFailure }
    connection.dataReceived(streamID: streamID, bytes: UnsafeRawBufferPointer(start: data, count: length))
    return 0
}

private func serverOnStreamClose(
    _ session: OpaquePointer?, _ streamID: Int32, _ errorCode: UInt32, _ userData: UnsafeMutableRawPointer?
) -> Int32 {
    guard let connection = connection(userData) else { return callbackFailure }
    connection.streamClosed(streamID: streamID, errorCode: errorCode)
    return 0
}

private func serverOnFrameSend(
    _ session: OpaquePointer?, _ frame: UnsafePointer<nghttp2_frame>?, _ userData: UnsafeMutableRawPointer?
) -> Int32 {
    guard let connection = connection(userData), let frame else { return callbackFailure }
    let header = frame.pointee.hd
    switch UInt32(header.type) {
    case NGHTTP2_HEADERS.rawValue, NGHTTP2_DATA.rawValue:
        connection.dataSentSinceLastPing = true
        connection.pingStrikes = 0
        if header.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0 {
            connection.responseEnded(streamID: header.stream_id)
        }
    case NGHTTP2_RST_STREAM.rawValue:
        connection.resetSent(errorCode: frame.pointee.rst_stream.error_code)
    default:
        break
    }
    return 0
}
