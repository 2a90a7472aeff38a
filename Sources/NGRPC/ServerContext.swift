import Synchronization

/// Everything a handler knows about its call besides the messages: method, caller metadata,
/// deadline, trace, peer, cancellation, and the response metadata it wants to send.
///
/// Thread-safety: immutable fields are set by the transport before the handler starts; the mutable
/// response metadata and the cancellation flag are guarded by `state`'s mutex.
public final class ServerContext: Sendable {
    public let method: MethodDescriptor
    public let requestMetadata: Metadata
    /// When the caller's `grpc-timeout` runs out; nil means no deadline.
    public let deadline: ContinuousClock.Instant?
    public let trace: TraceContext
    /// The remote address, e.g. `127.0.0.1:53122`, or `unix:` / `in-process`.
    public let peer: String
    /// Whether the call arrived over TLS.
    public let isSecure: Bool
    /// The client certificate verified in the TLS handshake (mutual TLS), or nil.
    public let peerCertificate: PeerCertificate?

    private struct State {
        var responseHeaders = Metadata()
        var trailers = Metadata()
        var cancellation: RPCStatus?
        var cancelHandlers: [@Sendable () -> Void] = []
        var values: [String: any Sendable] = [:]
    }
    private let state = Mutex(State())

    public init(method: MethodDescriptor, requestMetadata: Metadata, deadline: ContinuousClock.Instant?, trace: TraceContext, peer: String, isSecure: Bool = false,
        peerCertificate: PeerCertificate? = nil
    ) {
        self.method = method
        self.requestMetadata = requestMetadata
        self.deadline = deadline
        self.trace = trace
        self.peer = peer
        self.isSecure = isSecure
        self.peerCertificate = peerCertificate
    }

    /// Metadata sent with the response headers. Only takes effect before the first response message.
    public var responseHeaders: Metadata {
        get { state.withLock { $0.responseHeaders } }
        set { state.withLock { $0.responseHeaders = newValue } }
    }

    /// Metadata sent with the trailers, after `grpc-status`.
    public var trailers: Metadata {
        get { state.withLock { $0.trailers } }
        set { state.withLock { $0.trailers = newValue } }
    }

    /// Why the call was cancelled (client RST_STREAM, deadline, connection loss, shutdown), or nil.
    public var cancellation: RPCStatus? { state.withLock { $0.cancellation } }
    public var isCancelled: Bool { cancellation != nil }

    /// Time left before the deadline, or nil without one.
    public var timeRemaining: Duration? { deadline.map { $0 - ContinuousClock.now } }

    /// Runs `handler` once when the call is cancelled (immediately if it already is).
    public func onCancel(_ handler: @escaping @Sendable () -> Void) {
        let runNow = state.withLock { state -> Bool in
            if state.cancellation != nil { return true }
            state.cancelHandlers.append(handler)
            return false
        }
        if runNow { handler() }
    }

    /// Called by the transport (or a test) when the call ends abnormally. Idempotent.
    public func cancel(_ reason: RPCStatus) {
        let handlers = state.withLock { state -> [@Sendable () -> Void] in
            guard state.cancellation == nil else { return [] }
            state.cancellation = reason
            defer { state.cancelHandlers.removeAll() }
            return state.cancelHandlers
        }
        for handler in handlers { handler() }
    }

    /// Per-call values set by interceptors (an authenticated identity, say) for handlers to read.
    public subscript<Value: Sendable>(value key: String, as type: Value.Type = Value.self) -> Value? {
        state.withLock { $0.values[key] as? Value }
    }

    public func setValue(_ value: (any Sendable)?, forKey key: String) {
        state.withLock { $0.values[key] = value }
    }
}
