import Testing

@testable import NGRPC

@Suite("Limits and connection policy")
struct HardeningTests {
    @Test func oversizedRequestHeadersAreRefused() async throws {
        let handled = Box(false)
        let loopback = try await Loopback.start { router in
            router.registerUnary(Echo.get) { (request: RawMessage, _) -> RawMessage in
                handled.set(true)
                return request
            }
        }
        var metadata = Metadata()
        for index in 0..<20 { metadata.add("x-big-\(index)", String(repeating: "v", count: 1000)) }
        let status = await expectStatus(.resourceExhausted) {
            let _: RawMessage = try await loopback.channel.unary(
                Echo.get, request: RawMessage("x"), options: CallOptions(metadata: metadata))
        }
        #expect(status?.message.contains("16384") == true)
        #expect(!handled.get)
        // The connection is still good for well-behaved calls.
        let fine: RawMessage = try await loopback.channel.unary(Echo.get, request: RawMessage("ok"))
        #expect(fine.text == "ok")
        await loopback.stop()
    }

    @Test func idleConnectionGetsGoAwayAndChannelReconnects() async throws {
        let loopback = try await Loopback.start(configure: { $0.connectionIdleTimeout = .milliseconds(100) }) { router in
            router.registerUnary(Echo.get) { (request: RawMessage, _) in request }
        }
        let first: RawMessage = try await loopback.channel.unary(Echo.get, request: RawMessage("1"))
        #expect(first.text == "1")
        try await Task.sleep(for: .milliseconds(400))
        let second: RawMessage = try await loopback.channel.unary(Echo.get, request: RawMessage("2"))
        #expect(second.text == "2")
        await loopback.stop()
    }

    @Test func keepalivePingsAreAnsweredAndConnectionStays() async throws {
        let loopback = try await Loopback.start(configure: {
            $0.keepaliveInterval = .milliseconds(30)
            $0.keepaliveTimeout = .milliseconds(500)
        }) { router in
            router.registerBidirectionalStreaming(Echo.chat) {
                (requests: RPCRequestStream<RawMessage>, writer: RPCResponseWriter<RawMessage>, _) in
                for try await request in requests { try await writer.write(request) }
            }
        }
        // One long call across many keepalive rounds: a missing ACK would close the connection.
        let call: RPCBidirectionalCall<RawMessage, RawMessage> = try await loopback.channel.bidirectionalStreaming(Echo.chat)
        var responses = call.responses.makeAsyncIterator()
        for round in 0..<5 {
            try await Task.sleep(for: .milliseconds(100))
            try await call.send(RawMessage("\(round)"))
            #expect(try await responses.next()?.text == "\(round)")
        }
        try await call.closeSend()
        #expect(try await responses.next() == nil)
        await loopback.stop()
    }

    @Test func clientKeepaliveWithinTheServersPolicyKeepsTheConnection() async throws {
        let loopback = try await Loopback.start(
            configure: { $0.minPingIntervalWithoutData = .milliseconds(20) },
            configureClient: { $0.keepaliveInterval = .milliseconds(40) }
        ) { router in
            router.registerUnary(Echo.get) { (request: RawMessage, _) in request }
        }
        let first: RawMessage = try await loopback.channel.unary(Echo.get, request: RawMessage("1"))
        #expect(first.text == "1")
        try await Task.sleep(for: .milliseconds(400))  // ~10 keepalive rounds, each acknowledged
        let second: RawMessage = try await loopback.channel.unary(Echo.get, request: RawMessage("2"))
        #expect(second.text == "2")
        await loopback.stop()
    }

    @Test func clientKeepaliveTooEagerGetsTooManyPings() async throws {
        // Pings every 10 ms against a 1 s minimum: the server answers GOAWAY too_many_pings, the
        // channel doubles its interval (as gRPC clients do) and reconnects for the next call.
        let loopback = try await Loopback.start(
            configure: { $0.minPingIntervalWithoutData = .seconds(1) },
            configureClient: { $0.keepaliveInterval = .milliseconds(10) }
        ) { router in
            router.registerUnary(Echo.get) { (request: RawMessage, _) in request }
        }
        // A call open when the GOAWAY comes fails UNAVAILABLE naming it (this client does not retry
        // transparently), and the channel connects afresh for the next one. How many calls a GOAWAY
        // catches depends on the machine's load, not on the channel; what bounds them is the
        // doubling: from 10 ms, seven doublings pass the server's 1 s minimum, after which it has
        // no ping to object to. Eight attempts per call therefore suffice however slow the calls are.
        func call(_ text: String) async throws -> RawMessage? {
            for _ in 0..<8 {
                do {
                    return try await loopback.channel.unary(Echo.get, request: RawMessage(text))
                } catch let status as RPCStatus where status.code == .unavailable {
                    #expect(status.message.hasSuffix("server sent GOAWAY ENHANCE_YOUR_CALM (error code 11): too_many_pings"))
                    continue
                }
            }
            return nil
        }
        #expect(try await call("1")?.text == "1")
        try await Task.sleep(for: .milliseconds(200))
        #expect(try await call("2")?.text == "2")
        let interval = await loopback.channel.currentKeepaliveInterval()
        #expect(interval.map { $0 >= .milliseconds(20) } == true)
        await loopback.stop()
    }

    @Test func aCallOpenWhenTheServerSendsTooManyPingsFailsNamingIt() async throws {
        // The handler holds the call while the client pings every 10 ms against a 1 s minimum:
        // the GOAWAY comes mid-call, and the status says why the connection went.
        let loopback = try await Loopback.start(
            configure: { $0.minPingIntervalWithoutData = .seconds(1) },
            configureClient: { $0.keepaliveInterval = .milliseconds(10) }
        ) { router in
            router.registerUnary(Echo.get) { (request: RawMessage, _) in
                try await Task.sleep(for: .seconds(2))
                return request
            }
        }
        do {
            let _: RawMessage = try await loopback.channel.unary(Echo.get, request: RawMessage("held"))
            Issue.record("the call outlived a too_many_pings GOAWAY")
        } catch let status as RPCStatus {
            #expect(status.code == .unavailable)
            #expect(status.message == "server sent GOAWAY ENHANCE_YOUR_CALM (error code 11): too_many_pings")
        }
        #expect(await loopback.channel.currentKeepaliveInterval() == .milliseconds(20))
        await loopback.stop()
    }

    @Test func maxSendMessageSizeFailsTheCall() async throws {
        let loopback = try await Loopback.start(configure: { $0.maxSendMessageSize = 100 }) { router in
            router.registerUnary(Echo.get) { (_: RawMessage, _) in RawMessage([UInt8](repeating: 1, count: 101)) }
        }
        await expectStatus(.resourceExhausted) {
            let _: RawMessage = try await loopback.channel.unary(Echo.get, request: RawMessage("x"))
        }
        await loopback.stop()
    }
}
