import Testing

@testable import NGRPC

@Suite("Per-method handler execution (RPCRouter.setExecution)")
struct RouteExecutionTests {
    @Test func onlyTheMarkedMethodRunsOnTheIOThread() async throws {
        let loopback = try await Loopback.start { router in
            router.registerUnary(Echo.get) { (_: RawMessage, _) in RawMessage(currentThreadName()) }
            router.registerUnary(Echo.missing) { (_: RawMessage, _) in RawMessage(currentThreadName()) }
            router.setExecution(.ioThread, for: Echo.get)
        }
        for _ in 0..<3 {
            let onLoop: RawMessage = try await loopback.channel.unary(Echo.get, request: RawMessage("x"))
            #expect(onLoop.text.hasPrefix("ngrpc-io-"))
            let onPool: RawMessage = try await loopback.channel.unary(Echo.missing, request: RawMessage("x"))
            #expect(!onPool.text.hasPrefix("ngrpc-io-"))
        }
        await loopback.stop()
    }

    @Test func aMethodCanOptOutOfAnIOThreadDefault() async throws {
        let loopback = try await Loopback.start(configure: { $0.handlerExecution = .ioThread }) { router in
            router.registerUnary(Echo.get) { (_: RawMessage, _) in RawMessage(currentThreadName()) }
            router.setExecution(.concurrencyPool, for: Echo.get)
            // Marking a method that is not registered changes nothing (and adds no route).
            router.setExecution(.ioThread, for: Echo.missing)
        }
        let reply: RawMessage = try await loopback.channel.unary(Echo.get, request: RawMessage("x"))
        #expect(!reply.text.hasPrefix("ngrpc-io-"))
        await expectStatus(.unimplemented) {
            let _: RawMessage = try await loopback.channel.unary(Echo.missing, request: RawMessage("x"))
        }
        await loopback.stop()
    }
}

@Suite("Request head fields decoded from bytes")
struct RequestHeadBytesTests {
    private func contentType(_ value: String) -> (grpc: Bool, kept: String?) {
        var head = RequestHead()
        head.add(name: "content-type", value: value, maxListSize: 1 << 20, maxFieldCount: 100)
        return (head.hasGRPCContentType, head.contentType)
    }

    @Test func grpcContentTypesAreRecognisedWithoutKeepingTheText() {
        for value in ["application/grpc", "application/grpc+proto", "application/grpc+json", "application/grpc;charset=utf-8"] {
            let result = contentType(value)
            #expect(result.grpc, "\(value)")
            #expect(result.kept == nil, "\(value)")
            #expect(RequestHead.isGRPCContentType(value), "\(value)")
        }
    }

    @Test func otherContentTypesAreKeptForTheError() {
        for value in ["", "application/json", "application/grp", "application/grpcx", "Application/grpc", "text/plain"] {
            let result = contentType(value)
            #expect(!result.grpc, "\(value)")
            #expect(result.kept == value, "\(value)")
            #expect(!RequestHead.isGRPCContentType(value), "\(value)")
        }
        #expect(!RequestHead().hasGRPCContentType)
    }

    @Test func reservedNamesNeverBecomeMetadataAndTheRestDo() {
        let names = [
            "host", "upgrade", "connection", "keep-alive", "content-length", "proxy-connection",
            "transfer-encoding", "te", "content-type", "grpc-timeout", "grpc-encoding", "grpc-accept-encoding",
            "grpc-status", "grpc-message", "grpc-", "grpc-anything", "grpc-retry-pushback-ms", "user-agent",
            "accept-encoding", "x-custom", "hosts", "grpc", "grp", "x-grpc-thing", "upgrade-insecure", "x-data-bin",
        ]
        var head = RequestHead()
        for name in names {
            let value = name.hasSuffix("-bin") ? "AAEC" : "v-\(name)"
            head.add(name: name, value: value, maxListSize: 1 << 20, maxFieldCount: 100)
        }
        let kept = head.metadata.entries.map(\.key)
        #expect(kept == names.filter { !MetadataRules.isReserved($0) }, "\(kept)")
        #expect(kept == ["grpc-retry-pushback-ms", "user-agent", "accept-encoding", "x-custom", "hosts", "grpc", "grp",
                         "x-grpc-thing", "upgrade-insecure", "x-data-bin"])
        #expect(head.metadata["user-agent"] == "v-user-agent")
        #expect(head.metadata.binary("x-data-bin") == [0, 1, 2])
        #expect(head.timeout == "v-grpc-timeout")
        #expect(head.badBinaryHeader == nil)
        var bad = RequestHead()
        bad.add(name: "x-broken-bin", value: "not base64!", maxListSize: 1 << 20, maxFieldCount: 100)
        #expect(bad.badBinaryHeader == "x-broken-bin")
        #expect(bad.metadata.isEmpty)
    }

    @Test func traceIDsAreLowercaseHexOfTheRightLength() {
        for words in 1...2 {
            let id = FastTraceIDs.hex(words: words)
            #expect(id.utf8.count == words * 16)
            #expect(id.utf8.allSatisfy { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains($0) })
        }
        #expect(FastTraceIDs.hex(words: 2) != FastTraceIDs.hex(words: 2))
    }
}
