/// Typed views over the raw byte streams, used by generated service code.

/// The request messages of a client- or bidirectional-streaming call, in order.
public struct RPCRequestStream<Message: GRPCMessage>: AsyncSequence, Sendable {
    public typealias Element = Message
    let source: any RawMessageSource

    public init(source: any RawMessageSource) { self.source = source }

    public struct AsyncIterator: AsyncIteratorProtocol {
        let source: any RawMessageSource
        public mutating func next() async throws -> Message? {
            guard let bytes = try await source.next() else { return nil }
            return try decodeRequest(Message.self, bytes)
        }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(source: source) }
}

/// Writes the response messages of a server- or bidirectional-streaming call.
public struct RPCResponseWriter<Message: GRPCMessage>: Sendable {
    let sink: any RawMessageSink

    public init(sink: any RawMessageSink) { self.sink = sink }

    /// Sends one message; suspends while the client is not reading (flow control).
    public func write(_ message: Message) async throws {
        try await sink.send(try encodeResponse(message))
    }

    /// Sends the response headers before the first message.
    public func sendHeaders(_ metadata: Metadata) async throws {
        try await sink.sendHeaders(metadata)
    }
}

/// Decodes a request message; a malformed one is the caller's mistake, so INVALID_ARGUMENT.
func decodeRequest<Message: GRPCMessage>(_ type: Message.Type, _ bytes: [UInt8]) throws -> Message {
    do {
        return try Message(serializedBytes: bytes)
    } catch let status as RPCStatus {
        throw status
    } catch {
        throw RPCStatus(.invalidArgument, "request message is not a valid \(Message.grpcMessageName): \(error)")
    }
}

func encodeResponse<Message: GRPCMessage>(_ message: Message) throws -> [UInt8] {
    do {
        return try message.serializedBytes()
    } catch let status as RPCStatus {
        throw status
    } catch {
        throw RPCStatus(.internal, "response message could not be encoded")
    }
}
