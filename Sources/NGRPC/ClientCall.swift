/// The client side's byte-level contract. `GRPCChannel` (HTTP/2 over libevent) implements it;
/// generated client stubs only use the typed helpers below.

/// Per-call options.
public struct CallOptions: Sendable {
    /// Sent as `grpc-timeout`; the call fails with DEADLINE_EXCEEDED when it runs out.
    public var timeout: Duration?
    public var metadata: Metadata
    /// Largest response message accepted; larger ones fail the call with RESOURCE_EXHAUSTED.
    public var maxReceiveMessageSize: Int

    public init(timeout: Duration? = nil, metadata: Metadata = Metadata(), maxReceiveMessageSize: Int = 4 * 1024 * 1024) {
        self.timeout = timeout
        self.metadata = metadata
        self.maxReceiveMessageSize = maxReceiveMessageSize
    }
}

/// One call in flight, at the byte level.
public protocol RawClientCall: Sendable {
    /// Sends one request message; suspends under flow control.
    func send(_ message: [UInt8]) async throws
    /// Half-closes the request side (END_STREAM).
    func closeSend() async throws
    /// The response headers, waiting for them if needed. Throws the call's status when it ended
    /// without headers (a trailers-only response).
    func responseHeaders() async throws -> Metadata
    /// The next response message, nil after the last one when the status is OK;
    /// throws the final `RPCStatus` when it is not OK.
    func receive() async throws -> [UInt8]?
    /// The trailers, after the call ended (waiting for the end if needed).
    func trailers() async -> Metadata
    /// Cancels the call (RST_STREAM CANCEL). Idempotent.
    func cancel()
}

/// Something that can start calls: a connection, or an in-process server for tests.
public protocol RPCChannel: Sendable {
    func makeCall(_ method: MethodDescriptor, options: CallOptions) async throws -> any RawClientCall
}

/// The response messages of a server- or bidirectional-streaming call.
public struct RPCResponseStream<Message: GRPCMessage>: AsyncSequence, Sendable {
    public typealias Element = Message
    public let call: any RawClientCall

    public init(call: any RawClientCall) { self.call = call }

    public struct AsyncIterator: AsyncIteratorProtocol {
        let call: any RawClientCall
        public mutating func next() async throws -> Message? {
            guard let bytes = try await call.receive() else { return nil }
            return try decodeResponse(Message.self, bytes)
        }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(call: call) }
}

/// Client side of a bidirectional call: send requests while reading responses.
public struct RPCBidirectionalCall<Request: GRPCMessage, Response: GRPCMessage>: Sendable {
    public let call: any RawClientCall

    public init(call: any RawClientCall) { self.call = call }

    public func send(_ message: Request) async throws {
        try await call.send(try encodeRequest(message))
    }

    public func closeSend() async throws { try await call.closeSend() }
    public var responses: RPCResponseStream<Response> { RPCResponseStream(call: call) }
    public func cancel() { call.cancel() }
}

/// Client side of a client-streaming call.
public struct RPCClientStreamingCall<Request: GRPCMessage, Response: GRPCMessage>: Sendable {
    public let call: any RawClientCall

    public init(call: any RawClientCall) { self.call = call }

    public func send(_ message: Request) async throws {
        try await call.send(try encodeRequest(message))
    }

    /// Half-closes and waits for the single response.
    public func finish() async throws -> Response {
        try await call.closeSend()
        return try await receiveSingle(Response.self, from: call)
    }

    public func cancel() { call.cancel() }
}

extension RPCChannel {
    public func unary<Request: GRPCMessage, Response: GRPCMessage>(
        _ method: MethodDescriptor, request: Request, options: CallOptions = CallOptions()
    ) async throws -> Response {
        let call = try await makeCall(method, options: options)
        do {
            try await call.send(try encodeRequest(request))
            try await call.closeSend()
            return try await receiveSingle(Response.self, from: call)
        } catch {
            call.cancel()
            throw error
        }
    }

    public func serverStreaming<Request: GRPCMessage, Response: GRPCMessage>(
        _ method: MethodDescriptor, request: Request, options: CallOptions = CallOptions()
    ) async throws -> RPCResponseStream<Response> {
        let call = try await makeCall(method, options: options)
        try await call.send(try encodeRequest(request))
        try await call.closeSend()
        return RPCResponseStream(call: call)
    }

    public func clientStreaming<Request: GRPCMessage, Response: GRPCMessage>(
        _ method: MethodDescriptor, options: CallOptions = CallOptions()
    ) async throws -> RPCClientStreamingCall<Request, Response> {
        RPCClientStreamingCall(call: try await makeCall(method, options: options))
    }

    public func bidirectionalStreaming<Request: GRPCMessage, Response: GRPCMessage>(
        _ method: MethodDescriptor, options: CallOptions = CallOptions()
    ) async throws -> RPCBidirectionalCall<Request, Response> {
        RPCBidirectionalCall(call: try await makeCall(method, options: options))
    }
}

func receiveSingle<Response: GRPCMessage>(_ type: Response.Type, from call: any RawClientCall) async throws -> Response {
    guard let bytes = try await call.receive() else {
        throw RPCStatus(.internal, "server sent no response message")
    }
    if try await call.receive() != nil {
        throw RPCStatus(.internal, "server sent more than one response message")
    }
    return try decodeResponse(Response.self, bytes)
}

func encodeRequest<Message: GRPCMessage>(_ message: Message) throws -> [UInt8] {
    do {
        return try message.serializedBytes()
    } catch let status as RPCStatus {
        throw status
    } catch {
        throw RPCStatus(.internal, "request message could not be encoded: \(error)")
    }
}

func decodeResponse<Message: GRPCMessage>(_ type: Message.Type, _ bytes: [UInt8]) throws -> Message {
    do {
        return try Message(serializedBytes: bytes)
    } catch let status as RPCStatus {
        throw status
    } catch {
        throw RPCStatus(.internal, "response message is not a valid \(Message.grpcMessageName): \(error)")
    }
}
