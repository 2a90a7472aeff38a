import NGRPC

/// An `RPCChannel` that runs calls against a router in the same process, so generated clients
/// can be tested without a transport. Each call runs its handler in a task; responses flow back
/// through an `AsyncThrowingStream` ending with the handler's status.
struct LoopbackChannel: RPCChannel {
    let router: RPCRouter

    func makeCall(_ method: MethodDescriptor, options: CallOptions) async throws -> any RawClientCall {
        guard let route = router.route(forPath: method.path) else {
            throw RPCStatus(.unimplemented, "unknown method \(method.path)")
        }
        return LoopbackCall(handler: route.handler, context: makeContext(method))
    }
}

final class LoopbackCall: RawClientCall {
    private let source = InMemorySource(finished: false)
    private let responses: AsyncThrowingStream<[UInt8], any Error>
    private let task: Task<Void, Never>
    private let context: ServerContext

    init(handler: @escaping RawHandler, context: ServerContext) {
        let (responses, continuation) = AsyncThrowingStream.makeStream(of: [UInt8].self)
        self.responses = responses
        self.context = context
        let source = self.source
        task = Task {
            do {
                try await handler(source, ForwardingSink(continuation: continuation), context)
                continuation.finish()
            } catch {
                continuation.finish(throwing: error)
            }
        }
    }

    func send(_ message: [UInt8]) async throws { source.push(message) }
    func closeSend() async throws { source.finish() }
    func responseHeaders() async throws -> Metadata { Metadata() }
    func trailers() async -> Metadata { Metadata() }

    func receive() async throws -> [UInt8]? {
        // One reader at a time by contract; iterators of one stream share its buffer, so a fresh
        // iterator per call continues where the previous one stopped.
        var iterator = responses.makeAsyncIterator()
        return try await iterator.next()
    }

    func cancel() {
        context.cancel(RPCStatus(.cancelled, "cancelled by the client"))
        task.cancel()
    }
}

private struct ForwardingSink: RawMessageSink {
    let continuation: AsyncThrowingStream<[UInt8], any Error>.Continuation
    func sendHeaders(_ metadata: Metadata) async throws {}
    func send(_ message: [UInt8]) async throws { continuation.yield(message) }
}
