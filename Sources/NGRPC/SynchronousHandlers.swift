/// Unary handlers that answer without suspending, run inline on the connection's I/O thread.
///
/// Why: a unary call whose answer is computed from the request alone (an echo, a health check)
/// spends more on its Swift Task — creation, scheduling on the loop's executor, the request and
/// response queues' continuations — than on its own work. A synchronous handler is called on the
/// loop thread as soon as the request has ended, and its response is submitted to nghttp2 there
/// and then: no Task, no queue hand-off.
///
/// The async handler stays registered beside it and is used when the synchronous one declines a
/// call (returns nil: it would have to wait, say) or when some interceptor in the server's chain
/// has no synchronous form. Semantics are the same on both paths: the same interceptors, limits,
/// deadline, metadata, trailers and status mapping.

/// A synchronous byte-level unary handler: the request message in, the response message out, or
/// nil to hand the call to the method's async handler instead. Runs on an I/O thread: it must not
/// block.
public typealias RawSynchronousHandler = @Sendable (_ request: [UInt8], _ context: ServerContext) throws -> [UInt8]?

/// An interceptor that can also wrap synchronous handlers. When every interceptor of a server
/// conforms, methods with a synchronous handler take the synchronous path; otherwise they run
/// their async handler through the async chain.
public protocol SynchronousServerInterceptor: ServerInterceptor {
    /// Continue with `next` (returning what it returns: nil means the call goes to the async
    /// path, where this interceptor's async `intercept` sees it again) or throw to end the call.
    func interceptSynchronously(
        request: [UInt8], context: ServerContext, next: RawSynchronousHandler
    ) throws -> [UInt8]?
}

extension RPCRouter {
    /// Adds a synchronous form to a unary method registered with `registerUnary` (or the generated
    /// `register(into:)`). `body` returns nil to decline a call, which then runs on the async
    /// handler. No effect when `method` is not registered (yet).
    public mutating func registerSynchronousUnary<Request: GRPCMessage, Response: GRPCMessage>(
        _ method: MethodDescriptor,
        _ body: @escaping @Sendable (Request, ServerContext) throws -> Response?
    ) {
        guard routes[method.path] != nil else { return }
        setSynchronousHandler({ bytes, context in
            try body(try decodeRequest(Request.self, bytes), context).map { try encodeResponse($0) }
        }, for: method)
    }
}

extension Array where Element == any ServerInterceptor {
    /// `handler` wrapped in every interceptor's synchronous form, the first element outermost;
    /// nil when some interceptor has none.
    func wrappingSynchronously(_ handler: @escaping RawSynchronousHandler) -> RawSynchronousHandler? {
        var wrapped = handler
        for interceptor in reversed() {
            guard let synchronous = interceptor as? any SynchronousServerInterceptor else { return nil }
            let next = wrapped
            wrapped = { request, context in
                try synchronous.interceptSynchronously(request: request, context: context, next: next)
            }
        }
        return wrapped
    }
}
