/// Maps `:path` to handlers. Generated service code registers its methods here through the typed
/// `register` functions; unknown paths are answered with UNIMPLEMENTED by the transport.
public struct RPCRouter: Sendable {
    public struct Route: Sendable {
        public let method: MethodDescriptor
        public let handler: RawHandler
        /// Where this method's handler runs; nil means `ServerConfiguration.handlerExecution`.
        public var execution: ServerConfiguration.HandlerExecution?
        /// A unary method's synchronous form (`registerSynchronousUnary`), run inline on the I/O
        /// thread when the interceptor chain allows it; `handler` remains the fallback.
        public var synchronous: RawSynchronousHandler?
    }

    public private(set) var routes: [String: Route] = [:]

    public init() {}

    /// Fully qualified names of every registered service, sorted (for reflection).
    public var serviceNames: [String] {
        Array(Set(routes.values.map(\.method.service))).sorted()
    }

    public func route(forPath path: String) -> Route? { routes[path] }

    /// Registers a byte-level handler; a later registration for the same path replaces it.
    public mutating func register(_ method: MethodDescriptor, handler: @escaping RawHandler) {
        routes[method.path] = Route(method: method, handler: handler, execution: nil, synchronous: nil)
    }

    /// See `registerSynchronousUnary`; the byte-level form.
    public mutating func setSynchronousHandler(_ handler: @escaping RawSynchronousHandler, for method: MethodDescriptor) {
        guard routes[method.path]?.method.kind == .unary else { return }
        routes[method.path]?.synchronous = handler
    }

    /// Runs `method`'s handler as `execution` says, whatever the server default. Meant for short
    /// handlers that never block (echo, health): `.ioThread` saves a Task hop to the concurrency
    /// pool and back per call. No effect when `method` is not registered (yet).
    public mutating func setExecution(_ execution: ServerConfiguration.HandlerExecution, for method: MethodDescriptor) {
        routes[method.path]?.execution = execution
    }

    public mutating func registerUnary<Request: GRPCMessage, Response: GRPCMessage>(
        _ method: MethodDescriptor,
        _ body: @escaping @Sendable (Request, ServerContext) async throws -> Response
    ) {
        register(method) { source, sink, context in
            let request = try await Self.singleRequest(Request.self, from: source)
            let response = try await body(request, context)
            try await sink.send(try encodeResponse(response))
        }
    }

    public mutating func registerServerStreaming<Request: GRPCMessage, Response: GRPCMessage>(
        _ method: MethodDescriptor,
        _ body: @escaping @Sendable (Request, RPCResponseWriter<Response>, ServerContext) async throws -> Void
    ) {
        register(method) { source, sink, context in
            let request = try await Self.singleRequest(Request.self, from: source)
            try await body(request, RPCResponseWriter(sink: sink), context)
        }
    }

    public mutating func registerClientStreaming<Request: GRPCMessage, Response: GRPCMessage>(
        _ method: MethodDescriptor,
        _ body: @escaping @Sendable (RPCRequestStream<Request>, ServerContext) async throws -> Response
    ) {
        register(method) { source, sink, context in
            let response = try await body(RPCRequestStream(source: source), context)
            try await sink.send(try encodeResponse(response))
        }
    }

    public mutating func registerBidirectionalStreaming<Request: GRPCMessage, Response: GRPCMessage>(
        _ method: MethodDescriptor,
        _ body: @escaping @Sendable (RPCRequestStream<Request>, RPCResponseWriter<Response>, ServerContext) async throws -> Void
    ) {
        register(method) { source, sink, context in
            try await body(RPCRequestStream(source: source), RPCResponseWriter(sink: sink), context)
        }
    }

    /// Reads exactly one request message, as unary and server-streaming methods require.
    static func singleRequest<Request: GRPCMessage>(_ type: Request.Type, from source: any RawMessageSource) async throws -> Request {
        guard let first = try await source.next() else {
            throw RPCStatus(.unimplemented, "expected one request message, received none")
        }
        if try await source.next() != nil {
            throw RPCStatus(.unimplemented, "expected one request message, received several")
        }
        return try decodeRequest(Request.self, first)
    }
}

/// Code around every handler: authentication, tracing, logging, metrics. Interceptors run in the
/// order given to the server, outermost first; each calls `next` to continue or throws to stop.
public protocol ServerInterceptor: Sendable {
    func intercept(
        source: any RawMessageSource,
        sink: any RawMessageSink,
        context: ServerContext,
        next: RawHandler
    ) async throws
}

extension Array where Element == any ServerInterceptor {
    /// Wraps `handler` in every interceptor, the first element outermost.
    public func wrapping(_ handler: @escaping RawHandler) -> RawHandler {
        reversed().reduce(handler) { next, interceptor in
            { source, sink, context in
                try await interceptor.intercept(source: source, sink: sink, context: context, next: next)
            }
        }
    }
}
