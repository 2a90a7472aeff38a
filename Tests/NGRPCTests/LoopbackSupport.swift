import Glibc
import Synchronization
import Testing

@testable import NGRPC

/// Raw bytes as a message: the tests exercise the transport, not protobuf.
struct RawMessage: GRPCMessage, Equatable {
    var bytes: [UInt8]
    init(_ bytes: [UInt8]) { self.bytes = bytes }
    init(_ text: String) { bytes = Array(text.utf8) }
    init(serializedBytes: [UInt8]) { bytes = serializedBytes }
    func serializedBytes() -> [UInt8] { bytes }
    var text: String { String(decoding: bytes, as: UTF8.self) }
}

/// A value set from handlers and read by the test.
/// A one-shot signal: a handler opens it, the test awaits it. Waiting for the event itself, not
/// polling with a deadline: on 2 cores the whole suite can keep a task from a core for seconds
/// (two such tests failed "eventually activeCallCount == 1" in CI rehearsals after 5 s).
final class Latch: Sendable {
    private let stream: AsyncStream<Void>
    private let continuation: AsyncStream<Void>.Continuation

    init() { (stream, continuation) = AsyncStream.makeStream() }

    func open() {
        continuation.yield()
        continuation.finish()
    }

    func wait() async {
        for await _ in stream { return }
    }
}

final class Box<Value: Sendable>: Sendable {
    private let value: Mutex<Value>
    init(_ value: Value) { self.value = Mutex(value) }
    func set(_ newValue: Value) { value.withLock { $0 = newValue } }
    func update(_ body: (inout Value) -> Void) { value.withLock { body(&$0) } }
    var get: Value { value.withLock { $0 } }
}

/// Polls `condition` until it holds or `timeout` passes.
func eventually(timeout: Duration = .seconds(5), _ condition: () -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(5))
    }
    return condition()
}

enum Echo {
    static let get = MethodDescriptor(service: "test.Echo", method: "Get", kind: .unary)
    static let stream = MethodDescriptor(service: "test.Echo", method: "Stream", kind: .serverStreaming)
    static let collect = MethodDescriptor(service: "test.Echo", method: "Collect", kind: .clientStreaming)
    static let chat = MethodDescriptor(service: "test.Echo", method: "Chat", kind: .bidirectionalStreaming)
    static let missing = MethodDescriptor(service: "test.Echo", method: "Missing", kind: .unary)
}

/// A started server on 127.0.0.1:0 and a channel to it; `stop()` closes both.
struct Loopback {
    let server: GRPCServer
    let channel: GRPCChannel

    static func start(
        tls: (server: ServerConfiguration.TLS, client: ClientConfiguration.TLS)? = nil,
        configure: (inout ServerConfiguration) -> Void = { _ in },
        configureClient: (inout ClientConfiguration) -> Void = { _ in },
        routes: (inout RPCRouter) -> Void
    ) async throws -> Loopback {
        var router = RPCRouter()
        routes(&router)
        var configuration = ServerConfiguration(
            listeners: [ServerConfiguration.Listener(host: "127.0.0.1", port: 0, tls: tls?.server)], router: router)
        configuration.ioThreads = 2
        configure(&configuration)
        let server = GRPCServer(configuration: configuration)
        try await server.start()
        let port = try #require(server.port)
        var clientConfiguration = ClientConfiguration(
            host: tls == nil ? "127.0.0.1" : "localhost", port: port, tls: tls?.client)
        configureClient(&clientConfiguration)
        let channel = try GRPCChannel(configuration: clientConfiguration)
        return Loopback(server: server, channel: channel)
    }

    func stop() async {
        await channel.close()
        await server.shutdown(grace: .milliseconds(100))
    }
}

/// Expects `body` to fail with an `RPCStatus` of `code`; returns it.
@discardableResult
func expectStatus(
    _ code: RPCStatus.Code, sourceLocation: SourceLocation = #_sourceLocation, _ body: () async throws -> Void
) async -> RPCStatus? {
    do {
        try await body()
        Issue.record("expected \(code.name), call succeeded", sourceLocation: sourceLocation)
        return nil
    } catch let status as RPCStatus {
        #expect(status.code == code, "\(status)", sourceLocation: sourceLocation)
        return status
    } catch {
        Issue.record("expected RPCStatus, got \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

/// The name of the calling thread (from /proc: pthread_getname_np needs _GNU_SOURCE): the
/// server's loops are "ngrpc-io-N", the concurrency pool's threads are not.
func currentThreadName() -> String {
    let fd = open("/proc/thread-self/comm", O_RDONLY)
    guard fd >= 0 else { return "?" }
    defer { close(fd) }
    var buffer = [UInt8](repeating: 0, count: 32)
    let count = read(fd, &buffer, buffer.count)
    return String(decoding: buffer.prefix(max(0, count)).prefix { $0 != UInt8(ascii: "\n") }, as: UTF8.self)
}
