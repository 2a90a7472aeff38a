import Testing

@testable import NGRPC

/// The server against hand-made frames: abuse a real client never sends.
@Suite("Hostile HTTP/2 peers")
struct RawProtocolTests {
    typealias Raw = RawHTTP2Connection

    static func server(_ configure: (inout ServerConfiguration) -> Void = { _ in }) async throws -> GRPCServer {
        var router = RPCRouter()
        router.registerUnary(Echo.get) { (request: RawMessage, _) in request }
        var configuration = ServerConfiguration(listeners: [.init(host: "127.0.0.1", port: 0)], router: router)
        configuration.ioThreads = 1
        configure(&configuration)
        let server = GRPCServer(configuration: configuration)
        try await server.start()
        return server
    }

    @Test func pingFloodGetsTooManyPings() async throws {
        let server = try await Self.server()
        let connection = try Raw(port: try #require(server.port))
        var bytes = Raw.preface + Raw.frame(type: 4)
        for index in 0..<10 { bytes += Raw.frame(type: 6, payload: [UInt8](repeating: UInt8(index), count: 8)) }
        connection.send(bytes)
        let (frames, closed) = await connection.readFrames(timeout: .seconds(2))
        let goAway = try #require(frames.compactMap(\.goAwayDetails).first)
        #expect(goAway.code == 11)  // ENHANCE_YOUR_CALM
        #expect(goAway.debug == "too_many_pings")
        #expect(closed)
        await server.shutdown(grace: .zero)
    }

    @Test func pingsSpacedBeyondTheMinimumAreFine() async throws {
        let server = try await Self.server { $0.minPingIntervalWithoutData = .milliseconds(20) }
        let connection = try Raw(port: try #require(server.port))
        connection.send(Raw.preface + Raw.frame(type: 4))
        for index in 0..<5 {
            try await Task.sleep(for: .milliseconds(50))
            connection.send(Raw.frame(type: 6, payload: [UInt8](repeating: UInt8(index), count: 8)))
        }
        let (frames, closed) = await connection.readFrames(timeout: .milliseconds(300))
        #expect(frames.filter { $0.type == 6 && $0.flags & 1 == 1 }.count == 5)  // every PING acknowledged
        #expect(frames.compactMap(\.goAwayDetails).isEmpty)
        #expect(!closed)
        await server.shutdown(grace: .zero)
    }

    @Test func notHTTP2IsClosed() async throws {
        let server = try await Self.server()
        let connection = try Raw(port: try #require(server.port))
        connection.send(Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
        let (_, closed) = await connection.readFrames(timeout: .seconds(2))
        #expect(closed)
        // The server is unharmed.
        let channel = try GRPCChannel(host: "127.0.0.1", port: try #require(server.port))
        let reply: RawMessage = try await channel.unary(Echo.get, request: RawMessage("still here"))
        #expect(reply.text == "still here")
        await channel.close()
        await server.shutdown(grace: .zero)
    }

    @Test func silentConnectionHitsHandshakeTimeout() async throws {
        let server = try await Self.server { $0.handshakeTimeout = .milliseconds(100) }
        let connection = try Raw(port: try #require(server.port))
        // Without the timeout the connection would stay open for ever; the generous wait only
        // absorbs scheduling delays when the whole suite runs on a loaded 2-core machine.
        let (_, closed) = await connection.readFrames(timeout: .seconds(8))
        #expect(closed)
        await server.shutdown(grace: .zero)
    }

    @Test func garbageAfterPrefaceGetsGoAway() async throws {
        let server = try await Self.server()
        let connection = try Raw(port: try #require(server.port))
        // A DATA frame on stream 0 is a connection error (PROTOCOL_ERROR).
        connection.send(Raw.preface + Raw.frame(type: 4) + Raw.frame(type: 0, stream: 0, payload: [1, 2, 3]))
        let (frames, closed) = await connection.readFrames(timeout: .seconds(2))
        #expect(frames.compactMap(\.goAwayDetails).first?.code == 1)
        #expect(closed)
        await server.shutdown(grace: .zero)
    }
}
