import Testing

@testable import NGRPC

/// Records which path served a call and lets tests force either.
private final class PathLog: Sendable {
    let synchronous = Box(0)
    let async = Box(0)
    let threads = Box<[String]>([])
}

/// Echo/Get with both forms: the synchronous one answers "sync:<text>" and declines requests
/// starting with "wait", which the async one answers as "async:<text>". Requests name what the
/// handler should do: "throw-notfound", "throw-other", "big", "trailers".
private func registerEcho(into router: inout RPCRouter, log: PathLog) {
    struct Unexpected: Error {}
    router.registerUnary(Echo.get) { (request: RawMessage, _) in
        log.async.update { $0 += 1 }
        return RawMessage("async:" + request.text)
    }
    router.registerSynchronousUnary(Echo.get) { (request: RawMessage, context) -> RawMessage? in
        log.synchronous.update { $0 += 1 }
        log.threads.update { $0.append(currentThreadName()) }
        switch request.text {
        case let text where text.hasPrefix("wait"): return nil
        case "throw-notfound": throw RPCStatus(.notFound, "no such thing")
        case "throw-other": throw Unexpected()
        case "big": return RawMessage([UInt8](repeating: 7, count: 2048))
        case "trailers":
            var headers = Metadata()
            headers.add("x-head", context.requestMetadata["x-in"] ?? "missing")
            context.responseHeaders = headers
            context.trailers.add("x-tail", "t1")
            context.trailers.add("x-trace", context.trace.traceID)
            return RawMessage("sync:trailers")
        default: return RawMessage("sync:" + request.text)
        }
    }
}

/// A synchronous interceptor that tags the response headers; with `refuse` it ends every call.
private struct TaggingInterceptor: SynchronousServerInterceptor {
    let calls: Box<Int>
    var refuse = false

    func intercept(source: any RawMessageSource, sink: any RawMessageSink, context: ServerContext, next: RawHandler) async throws {
        try tag(context)
        try await next(source, sink, context)
    }

    func interceptSynchronously(request: [UInt8], context: ServerContext, next: RawSynchronousHandler) throws -> [UInt8]? {
        try tag(context)
        return try next(request, context)
    }

    private func tag(_ context: ServerContext) throws {
        calls.update { $0 += 1 }
        if refuse { throw RPCStatus(.permissionDenied, "refused by interceptor") }
        context.responseHeaders.set("x-intercepted", "yes")
    }
}

/// An interceptor with only the async form.
private struct AsyncOnlyInterceptor: ServerInterceptor {
    func intercept(source: any RawMessageSource, sink: any RawMessageSink, context: ServerContext, next: RawHandler) async throws {
        try await next(source, sink, context)
    }
}

@Suite("Synchronous unary handlers (RPCRouter.registerSynchronousUnary)")
struct SynchronousHandlerTests {
    @Test func answersInlineOnTheIOThread() async throws {
        let log = PathLog()
        let loopback = try await Loopback.start { registerEcho(into: &$0, log: log) }
        for index in 0..<5 {
            let reply: RawMessage = try await loopback.channel.unary(Echo.get, request: RawMessage("m\(index)"))
            #expect(reply.text == "sync:m\(index)")
        }
        #expect(log.synchronous.get == 5)
        #expect(log.async.get == 0)
        #expect(log.threads.get.allSatisfy { $0.hasPrefix("ngrpc-io-") }, "\(log.threads.get)")
        await loopback.stop()
    }

    @Test func aDeclinedCallRunsOnTheAsyncHandlerWithTheSameRequest() async throws {
        let log = PathLog()
        let loopback = try await Loopback.start { registerEcho(into: &$0, log: log) }
        let reply: RawMessage = try await loopback.channel.unary(Echo.get, request: RawMessage("wait please"))
        #expect(reply.text == "async:wait please")
        #expect(log.synchronous.get == 1)
        #expect(log.async.get == 1)
        await loopback.stop()
    }

    @Test func metadataTrailersAndTraceReachTheClient() async throws {
        let log = PathLog()
        let loopback = try await Loopback.start { registerEcho(into: &$0, log: log) }
        var metadata = Metadata()
        metadata.add("x-in", "hello")
        metadata.add("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
        let call = try await loopback.channel.makeCall(Echo.get, options: CallOptions(metadata: metadata))
        try await call.send(Array("trailers".utf8))
        try await call.closeSend()
        #expect(try await call.responseHeaders()["x-head"] == "hello")
        #expect(try await call.receive() == Array("sync:trailers".utf8))
        #expect(try await call.receive() == nil)
        let trailers = await call.trailers()
        #expect(trailers["x-tail"] == "t1")
        #expect(trailers["x-trace"] == "0af7651916cd43dd8448eb211c80319c")
        await loopback.stop()
    }

    @Test func thrownErrorsBecomeStatuses() async throws {
        let log = PathLog()
        let loopback = try await Loopback.start { registerEcho(into: &$0, log: log) }
        let notFound = await expectStatus(.notFound) {
            let _: RawMessage = try await loopback.channel.unary(Echo.get, request: RawMessage("throw-notfound"))
        }
        #expect(notFound?.message == "no such thing")
        let other = await expectStatus(.internal) {
            let _: RawMessage = try await loopback.channel.unary(Echo.get, request: RawMessage("throw-other"))
        }
        #expect(other?.message == "internal error")
        // The connection serves the next call.
        let reply: RawMessage = try await loopback.channel.unary(Echo.get, request: RawMessage("after"))
        #expect(reply.text == "sync:after")
        await loopback.stop()
    }

    @Test func unaryRulesHold() async throws {
        let log = PathLog()
        let loopback = try await Loopback.start { registerEcho(into: &$0, log: log) }
        let none = await expectStatus(.unimplemented) {
            let call = try await loopback.channel.makeCall(Echo.get, options: CallOptions())
            try await call.closeSend()
            _ = try await call.receive()
        }
        #expect(none?.message == "expected one request message, received none")
        let several = await expectStatus(.unimplemented) {
            let call = try await loopback.channel.makeCall(Echo.get, options: CallOptions())
            try await call.send(Array("one".utf8))
            try await call.send(Array("two".utf8))
            try await call.closeSend()
            _ = try await call.receive()
        }
        #expect(several?.message == "expected one request message, received several")
        #expect(log.synchronous.get == 0, "the handler never sees a call that breaks the unary rules")
        await loopback.stop()
    }

    @Test func theDeadlineEndsACallWhoseRequestNeverEnds() async throws {
        let log = PathLog()
        let loopback = try await Loopback.start { registerEcho(into: &$0, log: log) }
        let expired = await expectStatus(.deadlineExceeded) {
            let call = try await loopback.channel.makeCall(Echo.get, options: CallOptions(timeout: .milliseconds(100)))
            try await call.send(Array("never ends".utf8))
            _ = try await call.receive()
        }
        #expect(expired != nil)
        #expect(log.synchronous.get == 0)
        let reply: RawMessage = try await loopback.channel.unary(Echo.get, request: RawMessage("next"))
        #expect(reply.text == "sync:next")
        await loopback.stop()
    }

    @Test func messageSizeLimitsApplyBothWays() async throws {
        let log = PathLog()
        let loopback = try await Loopback.start(configure: {
            $0.maxReceiveMessageSize = 1024
            $0.maxSendMessageSize = 1024
        }) { registerEcho(into: &$0, log: log) }
        let tooLarge = await expectStatus(.resourceExhausted) {
            let _: RawMessage = try await loopback.channel.unary(Echo.get, request: RawMessage([UInt8](repeating: 1, count: 1025)))
        }
        #expect(tooLarge?.message.contains("exceeds the limit of 1024 bytes") == true)
        #expect(log.synchronous.get == 0)
        let responseTooLarge = await expectStatus(.resourceExhausted) {
            let _: RawMessage = try await loopback.channel.unary(Echo.get, request: RawMessage("big"))
        }
        #expect(responseTooLarge?.message == "response message of 2048 bytes exceeds the limit of 1024 bytes")
        await loopback.stop()
    }

    @Test func synchronousInterceptorsWrapTheSynchronousPath() async throws {
        let log = PathLog()
        let calls = Box(0)
        let loopback = try await Loopback.start(configure: { $0.interceptors = [TaggingInterceptor(calls: calls)] }) {
            registerEcho(into: &$0, log: log)
        }
        let call = try await loopback.channel.makeCall(Echo.get, options: CallOptions())
        try await call.send(Array("x".utf8))
        try await call.closeSend()
        #expect(try await call.responseHeaders()["x-intercepted"] == "yes")
        #expect(try await call.receive() == Array("sync:x".utf8))
        #expect(calls.get == 1)
        #expect(log.synchronous.get == 1 && log.async.get == 0)
        await loopback.stop()
    }

    @Test func anInterceptorCanEndTheCallBeforeTheHandler() async throws {
        let log = PathLog()
        let calls = Box(0)
        let loopback = try await Loopback.start(configure: {
            $0.interceptors = [TaggingInterceptor(calls: calls, refuse: true)]
        }) { registerEcho(into: &$0, log: log) }
        let refused = await expectStatus(.permissionDenied) {
            let _: RawMessage = try await loopback.channel.unary(Echo.get, request: RawMessage("x"))
        }
        #expect(refused?.message == "refused by interceptor")
        #expect(log.synchronous.get == 0 && log.async.get == 0)
        await loopback.stop()
    }

    @Test func anAsyncOnlyInterceptorKeepsEveryCallOnTheAsyncPath() async throws {
        let log = PathLog()
        let loopback = try await Loopback.start(configure: {
            $0.interceptors = [TaggingInterceptor(calls: Box(0)), AsyncOnlyInterceptor()]
        }) { registerEcho(into: &$0, log: log) }
        let reply: RawMessage = try await loopback.channel.unary(Echo.get, request: RawMessage("x"))
        #expect(reply.text == "async:x")
        #expect(log.synchronous.get == 0 && log.async.get == 1)
        await loopback.stop()
    }

    @Test func onlyUnaryMethodsTakeASynchronousForm() {
        var router = RPCRouter()
        router.register(Echo.stream) { _, _, _ in }
        router.setSynchronousHandler({ bytes, _ in bytes }, for: Echo.stream)
        #expect(router.route(forPath: Echo.stream.path)?.synchronous == nil)
        // Not registered: nothing is added.
        router.setSynchronousHandler({ bytes, _ in bytes }, for: Echo.get)
        #expect(router.route(forPath: Echo.get.path) == nil)
    }

    @Test func manyConcurrentCallsOnOneConnection() async throws {
        let log = PathLog()
        let loopback = try await Loopback.start { registerEcho(into: &$0, log: log) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<500 {
                group.addTask {
                    let text = index % 10 == 0 ? "wait\(index)" : "c\(index)"
                    let reply: RawMessage = try await loopback.channel.unary(Echo.get, request: RawMessage(text))
                    #expect(reply.text == (index % 10 == 0 ? "async:" : "sync:") + text)
                }
            }
            try await group.waitForAll()
        }
        #expect(log.synchronous.get == 500)
        #expect(log.async.get == 50)
        await loopback.stop()
    }
}
