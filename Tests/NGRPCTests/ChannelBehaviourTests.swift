import Foundation
import TestSupport
import Testing

@testable import NGRPC

@Suite("Channel and server behaviour across connections")
struct ChannelBehaviourTests {
    @Test func channelReconnectsAfterServerRestart() async throws {
        var router = RPCRouter()
        router.registerUnary(Echo.get) { (request: RawMessage, _) in request }
        // A port below the kernel's ephemeral range: one from it (port 0) could be taken between
        // the two servers as the local port of some other test's outgoing connection (or of the
        // channel's own reconnect to a closed port), and the restart failed "Address already in use".
        let port = try #require(FreePort.belowEphemeralRange())
        var configuration = ServerConfiguration(listeners: [.init(host: "127.0.0.1", port: port)], router: router)
        configuration.ioThreads = 1
        let first = GRPCServer(configuration: configuration)
        try await first.start()
        let channel = try GRPCChannel(host: "127.0.0.1", port: port)
        let one: RawMessage = try await channel.unary(Echo.get, request: RawMessage("one"))
        #expect(one.text == "one")
        await first.shutdown(grace: .milliseconds(100))
        await expectStatus(.unavailable) {
            let _: RawMessage = try await channel.unary(Echo.get, request: RawMessage("down"))
        }
        configuration.listeners = [.init(host: "127.0.0.1", port: port)]
        let second = GRPCServer(configuration: configuration)
        try await second.start()
        let two: RawMessage = try await channel.unary(Echo.get, request: RawMessage("two"))
        #expect(two.text == "two")
        await channel.close()
        await second.shutdown(grace: .milliseconds(100))
    }

    /// Found by black-box testing: a host that does not resolve read "connection failed: Success".
    @Test func anUnresolvableHostIsNamedAsSuch() async throws {
        let channel = try GRPCChannel(host: "nosuchhost.invalid", port: 50051)
        let status = await expectStatus(.unavailable) {
            let _: RawMessage = try await channel.unary(Echo.get, request: RawMessage("x"))
        }
        #expect(status?.message.hasPrefix("cannot resolve host nosuchhost.invalid: ") == true, "\(String(describing: status))")
        await channel.close()
    }

    @Test func gzipResponsesWhenEnabledAndAccepted() async throws {
        let loopback = try await Loopback.start(configure: { $0.compressResponses = true }) { router in
            router.register(Echo.get) { source, sink, _ in
                let request = try await source.next() ?? []
                try await sink.send(request + request)
            }
        }
        let call = try await loopback.channel.makeCall(Echo.get, options: CallOptions())
        let payload = [UInt8](repeating: 97, count: 50_000)
        try await call.send(payload)
        try await call.closeSend()
        _ = try await call.responseHeaders()
        #expect(try await call.receive() == payload + payload)
        #expect(try await call.receive() == nil)
        await loopback.stop()
    }

    @Test func manyConcurrentCallsOnOneConnection() async throws {
        let loopback = try await Loopback.start { router in
            router.registerUnary(Echo.get) { (request: RawMessage, _) -> RawMessage in
                try await Task.sleep(for: .milliseconds(1))
                return request
            }
        }
        // More calls than SETTINGS_MAX_CONCURRENT_STREAMS: nghttp2 queues the excess client-side.
        try await withThrowingTaskGroup(of: Bool.self) { group in
            for index in 0..<500 {
                group.addTask {
                    let response: RawMessage = try await loopback.channel.unary(Echo.get, request: RawMessage("\(index)"))
                    return response.text == "\(index)"
                }
            }
            var matched = 0
            for try await ok in group where ok { matched += 1 }
            #expect(matched == 500)
        }
        #expect(await eventually { loopback.server.activeCallCount == 0 })
        await loopback.stop()
    }
}

@Suite("Handlers on the I/O thread (handlerExecution = .ioThread)")
struct IOThreadHandlerTests {
    @Test func allShapesAndDeadlinesWork() async throws {
        let loopback = try await Loopback.start(configure: { $0.handlerExecution = .ioThread }) { router in
            router.registerUnary(Echo.get) { (request: RawMessage, context) -> RawMessage in
                if request.text == "slow" { try await Task.sleep(for: .seconds(10)) }
                return request
            }
            router.registerBidirectionalStreaming(Echo.chat) {
                (requests: RPCRequestStream<RawMessage>, writer: RPCResponseWriter<RawMessage>, _) in
                for try await request in requests { try await writer.write(request) }
            }
            router.registerServerStreaming(Echo.stream) { (_: RawMessage, writer: RPCResponseWriter<RawMessage>, _) in
                for index in 0..<5000 { try await writer.write(RawMessage("\(index)")) }
            }
        }
        let echoed: RawMessage = try await loopback.channel.unary(Echo.get, request: RawMessage("x"))
        #expect(echoed.text == "x")
        await expectStatus(.deadlineExceeded) {
            let _: RawMessage = try await loopback.channel.unary(
                Echo.get, request: RawMessage("slow"), options: CallOptions(timeout: .milliseconds(100)))
        }
        let call: RPCBidirectionalCall<RawMessage, RawMessage> = try await loopback.channel.bidirectionalStreaming(Echo.chat)
        var responses = call.responses.makeAsyncIterator()
        for round in 0..<50 {
            try await call.send(RawMessage("\(round)"))
            #expect(try await responses.next()?.text == "\(round)")
        }
        try await call.closeSend()
        #expect(try await responses.next() == nil)
        var count = 0
        let stream: RPCResponseStream<RawMessage> = try await loopback.channel.serverStreaming(Echo.stream, request: RawMessage(""))
        for try await _ in stream { count += 1 }
        #expect(count == 5000)
        await loopback.stop()
    }
}

@Suite("Memory")
struct MemoryTests {
    @Test func finishedClientCallIsFreed() async throws {
        weak var clientStream: ClientStream?
        let loopback = try await Loopback.start { router in
            router.registerUnary(Echo.get) { (request: RawMessage, _) in request }
        }
        do {
            let call = try await loopback.channel.makeCall(Echo.get, options: CallOptions())
            try await call.send([1])
            try await call.closeSend()
            #expect(try await call.receive() == [1])
            #expect(try await call.receive() == nil)
            clientStream = (call as? ClientCallHandle)?.stream
            #expect(clientStream != nil)
        }
        #expect(await eventually { clientStream == nil }, "a completed client call is still referenced")
        await loopback.stop()
    }
}
