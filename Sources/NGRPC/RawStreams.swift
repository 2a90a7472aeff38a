/// The byte-level contract between a transport and handlers. The HTTP/2 transport implements
/// these with flow control; `InProcessTransport` implements them in memory for unit tests.

/// Inbound messages of one call, already de-framed (and decompressed).
public protocol RawMessageSource: Sendable {
    /// The next message, or nil when the client half-closed. Throws `RPCStatus` when the call
    /// was cancelled or a message broke a limit.
    func next() async throws -> [UInt8]?
}

/// Outbound side of one call. `send` suspends while the peer's flow-control window and the
/// transport's bounded queue are full, so a slow reader slows its producer.
public protocol RawMessageSink: Sendable {
    /// Sends response headers now (otherwise they go with the first message or the trailers).
    func sendHeaders(_ metadata: Metadata) async throws
    /// Frames and sends one message. Throws `RPCStatus(.cancelled)` once the call is gone.
    func send(_ message: [UInt8]) async throws
}

/// A handler at the byte level: reads requests from `source`, writes responses to `sink`.
/// Returning normally ends the call with OK (plus `context.trailers`); throwing `RPCStatus`
/// ends it with that status; any other error becomes INTERNAL.
public typealias RawHandler = @Sendable (_ source: any RawMessageSource, _ sink: any RawMessageSink, _ context: ServerContext) async throws -> Void
