internal import CNGHTTP2
import Synchronization

/// One client call: request messages out, response headers, messages and status in.
///
/// Threading: the fields marked "loop" are used only on the channel's loop thread; the queues and
/// promises are thread-safe and shared with the caller's tasks through `ClientCallHandle`.
/// Ownership: the connection's `streams` dictionary holds the stream while nghttp2 knows it; the
/// handle held by the caller keeps it alive after that.
final class ClientStream: LoopTask, @unchecked Sendable {
    let method: MethodDescriptor
    let options: CallOptions
    let loop: EventLoop
    private(set) var inbound: InboundMessageQueue!
    private(set) var outbound: OutboundMessageQueue!
    let headers = Promise<Metadata>()
    let status = Promise<RPCStatus>()
    private let trailerStore = Mutex(Metadata())

    // loop
    weak var connection: ClientConnection?
    var streamID: Int32 = -1
    var deframer: MessageDeframer
    var head = ResponseHead()
    var heldWindow = 0
    var dataDeferred = false
    var deadlineTimer: LoopTimer?
    var isClosed = false

    init(method: MethodDescriptor, options: CallOptions, loop: EventLoop, inboundLimit: Int, outboundLimit: Int) {
        self.method = method
        self.options = options
        self.loop = loop
        deframer = MessageDeframer(maxMessageSize: options.maxReceiveMessageSize)
        inbound = InboundMessageQueue(limit: inboundLimit, loop: loop, owner: self)
        outbound = OutboundMessageQueue(limit: outboundLimit, loop: loop, owner: self)
    }

    var trailers: Metadata { trailerStore.withLock { $0 } }

    /// Loop: returns held window and resumes the request body when the caller queued more.
    func runOnLoop() {
        let snapshot = outbound.beginLoopRun()
        guard !isClosed, streamID > 0, let connection, let session = connection.session else { return }
        if heldWindow > 0 && inbound.isWithinLimit {
            nghttp2_session_consume_stream(session, streamID, heldWindow)
            heldWindow = 0
        }
        if dataDeferred && (snapshot.hasData || snapshot.end != nil) {
            dataDeferred = false
            nghttp2_session_resume_data(session, streamID)
        }
        connection.requestFlush()
    }

    /// nghttp2 asks for request body bytes.
    func readData(into buffer: UnsafeMutablePointer<UInt8>, length: Int, flags: UnsafeMutablePointer<UInt32>) -> Int {
        let (count, end) = outbound.read(into: UnsafeMutableRawBufferPointer(start: buffer, count: length))
        if end != nil {
            flags.pointee |= NGHTTP2_DATA_FLAG_EOF.rawValue
            return count
        }
        if count == 0 {
            dataDeferred = true
            return Int(NGHTTP2_ERR_DEFERRED.rawValue)
        }
        return count
    }

    /// Loop: the call is over with `final`; everything waiting learns it. Idempotent.
    func complete(_ final: RPCStatus, trailers: Metadata = Metadata()) {
        guard !status.isCompleted else { return }
        deadlineTimer = nil
        trailerStore.withLock { $0 = trailers }
        headers.complete(.failure(final.code == .ok ? RPCStatus(.internal, "response had no headers") : final))
        if final.code == .ok {
            inbound.finish()
        } else {
            inbound.finish(failure: final)
        }
        outbound.detach(final.code == .ok ? RPCStatus(.internal, "call already completed") : final)
        // Nothing is left for the loop to do for this call: drop the queues' references to the
        // stream so the call is freed when the caller lets go of it.
        inbound.detachOwner()
        status.complete(.success(final))
    }

    /// Loop: ends the call locally (cancel, deadline, oversized response) and resets the stream.
    func abort(_ final: RPCStatus) {
        guard !status.isCompleted else { return }
        complete(final)
        inbound.fail(final)
        if streamID > 0, !isClosed, let connection {
            connection.resetStream(streamID, code: NGHTTP2_CANCEL)
        }
    }
}

/// The caller's handle on a `ClientStream`.
struct ClientCallHandle: RawClientCall {
    let stream: ClientStream

    func send(_ message: [UInt8]) async throws {
        try await stream.outbound.send(MessageFramer.frame(message))
    }

    func closeSend() async throws {
        stream.outbound.finish(.halfClose)
    }

    func responseHeaders() async throws -> Metadata {
        try await stream.headers.get()
    }

    func receive() async throws -> [UInt8]? {
        try await stream.inbound.next()
    }

    func trailers() async -> Metadata {
        _ = try? await stream.status.get()
        return stream.trailers
    }

    /// The final status (OK included), waiting for the end of the call.
    func finalStatus() async -> RPCStatus {
        (try? await stream.status.get()) ?? RPCStatus(.unknown)
    }

    func cancel() {
        let stream = self.stream
        stream.loop.execute {
            stream.abort(RPCStatus(.cancelled, "call cancelled by the client"))
            stream.connection?.requestFlush()
        }
    }
}

/// nghttp2 data source read callback for request bodies; `source.ptr` is the stream (unretained:
/// the connection's dictionary keeps it alive while nghttp2 can call this).
func clientStreamDataRead(
    _ session: OpaquePointer?, _ streamID: Int32, _ buffer: UnsafeMutablePointer<UInt8>?, _ length: Int,
    _ flags: UnsafeMutablePointer<UInt32>?, _ source: UnsafeMutablePointer<nghttp2_data_source>?,
    _ userData: UnsafeMutableRawPointer?
) -> Int {
    guard let buffer, let flags, let pointer = source?.pointee.ptr else {
        return Int(NGHTTP2_ERR_CALLBACK_FAILURE.rawValue)
    }
    return Unmanaged<ClientStream>.fromOpaque(pointer).takeUnretainedValue()
        .readData(into: buffer, length: length, flags: flags)
}
