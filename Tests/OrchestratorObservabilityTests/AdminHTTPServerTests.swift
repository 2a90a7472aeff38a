import Foundation
import Logging
import OrchestratorMetrics
import Synchronization
@testable import OrchestratorObservability
import Testing

#if canImport(Glibc)
    import Glibc
#endif

typealias HTTPExchange = (status: Int, headers: String, body: String)

/// One HTTP/1.1 exchange over a plain socket (no client library between the test and evhttp),
/// on a thread of its own: the admin server answers from the Swift concurrency pool, which has
/// one thread per core, so two parallel tests blocking pool threads in `recv` would starve it
/// (seen on the 2-core CI machine: both timed out after 10 s and stalled every other test).
func httpExchange(port: Int, _ request: String) async throws -> HTTPExchange {
    let result = await withCheckedContinuation { (continuation: CheckedContinuation<Result<HTTPExchange, any Error>, Never>) in
        Thread.detachNewThread {
            continuation.resume(returning: Result { try blockingHTTPExchange(port: port, request) })
        }
    }
    return try result.get()
}

struct HTTPExchangeError: Error, CustomStringConvertible {
    let description: String
}

/// Runs off any test task, so it reports problems as thrown errors rather than `#expect`.
private func blockingHTTPExchange(port: Int, _ request: String) throws -> HTTPExchange {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw HTTPExchangeError(description: "socket() failed with errno \(errno)") }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var timeout = timeval(tv_sec: 10, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard connected == 0 else { throw HTTPExchangeError(description: "connect failed with errno \(errno)") }
    let bytes = Array(request.utf8)
    guard send(fd, bytes, bytes.count, 0) == bytes.count else { throw HTTPExchangeError(description: "send failed with errno \(errno)") }
    var response: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    var failure: Int32 = 0
    while true {
        let count = recv(fd, &buffer, buffer.count, 0)
        if count < 0 { failure = errno }
        if count <= 0 { break }
        response += buffer[0..<count]
    }
    guard failure == 0 else { throw HTTPExchangeError(description: "recv failed with errno \(failure) after \(response.count) bytes") }
    let text = String(decoding: response, as: UTF8.self)
    let parts = text.components(separatedBy: "\r\n\r\n")
    let head = parts[0]
    // A missing or garbled status line fails the test rather than crashing the test process.
    let statusLine = head.split(separator: " ")
    guard statusLine.count >= 2 else {
        throw HTTPExchangeError(description: "no HTTP status line in \(response.count) bytes: \(text.debugDescription)")
    }
    let status = Int(statusLine[1]) ?? 0
    return (status, head, parts.dropFirst().joined(separator: "\r\n\r\n"))
}

@Suite("Admin HTTP server (evhttp)")
struct AdminHTTPServerTests {
    func makeServer(routes: AdminRoutes) throws -> AdminHTTPServer {
        try AdminHTTPServer(host: "127.0.0.1", port: 0, routes: routes, logger: Logger(label: "test"))
    }

    @Test func servesRoutesWith404And405AndClosesCleanly() async throws {
        var routes = AdminRoutes()
        routes.add(.get, "/hello") { request in .text(200, "hello \(request.query ?? "")\n") }
        routes.add(.put, "/echo") { request in .text(200, request.bodyText) }
        let server = try makeServer(routes: routes)
        defer { server.stop() }
        #expect(server.port > 0)

        let hello = try await httpExchange(port: server.port, "GET /hello?x=1 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        #expect(hello.status == 200)
        #expect(hello.body == "hello x=1\n")
        #expect(hello.headers.contains("Content-Type: text/plain; charset=utf-8"))

        let echo = try await httpExchange(port: server.port, "PUT /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nConnection: close\r\n\r\ndebug")
        #expect(echo.status == 200 && echo.body == "debug")

        let head = try await httpExchange(port: server.port, "HEAD /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        #expect(head.status == 200 && head.body.isEmpty)

        #expect(try await httpExchange(port: server.port, "GET /missing HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").status == 404)
        let wrong = try await httpExchange(port: server.port, "PUT /hello HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        #expect(wrong.status == 405)
        #expect(wrong.body.contains("allowed: GET, HEAD"))
        // Found by black-box testing: RFC 9110 requires the header, and it was missing.
        #expect(wrong.headers.contains("Allow: GET, HEAD"), "\(wrong.headers)")
        // Found by black-box testing: these got libevent's own 501 HTML page, not the 405.
        for method in ["DELETE", "PATCH", "OPTIONS"] {
            let other = try await httpExchange(port: server.port, "\(method) /hello HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            #expect(other.status == 405, "\(method)")
            #expect(other.body == "\(method) is not allowed on /hello (allowed: GET, HEAD)\n")
        }
    }

    @Test func aClientThatHangsUpBeforeASlowReplyDoesNotBreakTheServer() async throws {
        var routes = AdminRoutes()
        routes.add(.get, "/slow") { _ in
            try? await Task.sleep(for: .milliseconds(300))
            return .text(200, "late\n")
        }
        routes.add(.get, "/fast") { _ in .text(200, "fast\n") }
        let server = try makeServer(routes: routes)
        defer { server.stop() }
        // Send a request and close at once: libevent detaches the pending request, and the late
        // reply must free it rather than write to a closed connection.
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(server.port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        let request = Array("GET /slow HTTP/1.1\r\nHost: t\r\n\r\n".utf8)
        _ = send(fd, request, request.count, 0)
        close(fd)
        try await Task.sleep(for: .milliseconds(500))
        #expect(try await httpExchange(port: server.port, "GET /fast HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").body == "fast\n")
    }

    @Test func standardEndpointsReportReadinessMetricsAndLogLevel() async throws {
        let registry = MetricsRegistry()
        registry.counter("demo_total", help: "Demo.").labels().increment(by: 7)
        let control = LogLevelControl(.info)
        let failing = ReadinessCheck(name: "database") { "unreachable: connection refused" }
        let slow = ReadinessCheck(name: "slow") {
            try? await Task.sleep(for: .seconds(30))
            return nil
        }
        let ok = ReadinessCheck(name: "grpc") { nil }
        let routes = AdminEndpoints.routes(
            registry: registry, logLevel: control, readiness: [ok, failing, slow], readinessTimeout: .milliseconds(200), logger: Logger(label: "test"))

        let ready = await routes.respond(to: AdminRequest(method: .get, path: "/readyz"))
        #expect(ready.status == 503)
        #expect(String(decoding: ready.body, as: UTF8.self) == "not ready\ndatabase: unreachable: connection refused\nslow: no answer within 0.2 seconds\n")

        let healthy = await AdminEndpoints.routes(registry: registry, logLevel: control, readiness: [ok], logger: Logger(label: "test"))
            .respond(to: AdminRequest(method: .get, path: "/readyz"))
        #expect(healthy.status == 200)
        #expect(String(decoding: healthy.body, as: UTF8.self) == "ready\ngrpc: ok\n")

        let metrics = await routes.respond(to: AdminRequest(method: .get, path: "/metrics"))
        #expect(metrics.contentType == PrometheusText.contentType)
        #expect(String(decoding: metrics.body, as: UTF8.self).contains("demo_total 7\n"))

        let changed = await routes.respond(to: AdminRequest(method: .put, path: "/loglevel", body: Array(" Debug\n".utf8)))
        #expect(changed.status == 200 && control.level == .debug)
        let refused = await routes.respond(to: AdminRequest(method: .put, path: "/loglevel", body: Array("loud".utf8)))
        #expect(refused.status == 400 && control.level == .debug)
        let reset = await routes.respond(to: AdminRequest(method: .put, path: "/loglevel", body: Array("reset".utf8)))
        #expect(reset.status == 200 && control.level == .info)
    }
}

/// Keeps what is logged through it, with the level.
final class CapturingLogHandler: LogHandler, @unchecked Sendable {
    let lines = Mutex<[(level: Logger.Level, message: String)]>([])
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }
    func log(event: LogEvent) {
        lines.withLock { $0.append((event.level, "\(event.message) \(event.metadata?["to"].map { "\($0)" } ?? "")")) }
    }
}

@Suite("Log level changes")
struct LogLevelChangeTests {
    /// Found by black-box testing: a change to warning was logged at notice, which warning drops,
    /// so silencing the server left no line; setting the current level again was logged as a change.
    @Test func everyChangeLeavesALineAtALevelItsNewLevelShows() async {
        let handler = CapturingLogHandler()
        let control = LogLevelControl(.info)
        let routes = AdminEndpoints.routes(
            registry: MetricsRegistry(), logLevel: control, readiness: [], logger: Logger(label: "test") { _ in handler })
        for level in ["warning", "warning", "debug", "info"] {
            _ = await routes.respond(to: AdminRequest(method: .put, path: "/loglevel", body: Array(level.utf8)))
        }
        let lines = handler.lines.withLock { $0 }
        #expect(lines.map(\.level) == [.warning, .notice, .notice])
        #expect(lines.map(\.message) == ["log level changed warning", "log level changed debug", "log level changed info"])
    }
}
