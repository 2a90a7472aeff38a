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
        // What GET would send (found by black-box testing: no Content-Length at all).
        #expect(head.headers.contains("Content-Length: 7"), "\(head.headers)")

        // The absolute form HTTP/1.1 servers must accept (it was 404).
        let absolute = try await httpExchange(port: server.port, "GET http://example.com/hello?x=2 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        #expect(absolute.status == 200 && absolute.body == "hello x=2\n")
        #expect(AdminHTTPServer.originForm("https://h:1?q") == "/?q" && AdminHTTPServer.originForm("http://h") == "/")
        #expect(AdminHTTPServer.originForm("/plain?x") == "/plain?x")
        // CONNECT's answer has no length (libevent expects a tunnel) and its connection stayed
        // open: it is closed after the answer (the exchange reads until the server closes).
        let connect = try await httpExchange(port: server.port, "CONNECT /hello HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(connect.status == 405 && connect.headers.contains("Connection: close"), "\(connect.headers)")

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

    /// Each admin connection holds a file descriptor: past the limit a connection is closed at
    /// once, and one that sends no whole request within the deadline is closed then (slowloris
    /// connections renewed libevent's idle timeout for ever and exhausted the process's descriptors).
    @Test func connectionsPastTheLimitOrTheRequestDeadlineAreClosed() async throws {
        var routes = AdminRoutes()
        routes.add(.get, "/hello") { _ in .text(200, "hello\n") }
        let server = try AdminHTTPServer(
            host: "127.0.0.1", port: 0, routes: routes, logger: Logger(label: "test"), maxConnections: 2, requestDeadline: .seconds(2))
        defer { server.stop() }
        let port = server.port
        let closedAfter = await withCheckedContinuation { (continuation: CheckedContinuation<[Double?], Never>) in
            Thread.detachNewThread { continuation.resume(returning: idleConnectionsClosedAfter(port: port, count: 3, within: 8)) }
        }
        // The third, over the limit: at once (within a sweep); the first two: at the deadline.
        #expect(closedAfter.count == 3)
        if let third = closedAfter[2] { #expect(third < 1.5, "\(closedAfter)") } else { Issue.record("not closed: \(closedAfter)") }
        for held in closedAfter.prefix(2) {
            if let held { #expect(held > 1.5 && held < 4.5, "\(closedAfter)") } else { Issue.record("not closed: \(closedAfter)") }
        }
        // Still serving.
        #expect(try await httpExchange(port: port, "GET /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").status == 200)
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

/// Opens `count` connections sending one partial request line each, one after another, and
/// returns for each how many seconds after it opened the server closed it (nil: not within
/// `within` seconds). Blocking; run it on a thread of its own.
private func idleConnectionsClosedAfter(port: Int, count: Int, within: Double) -> [Double?] {
    var sockets: [(fd: Int32, opened: Date)] = []
    for _ in 0..<count {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        _ = send(fd, "GET /hel", 8, 0)
        sockets.append((fd, Date()))
        usleep(100_000)  // in order, so the third is the one over the limit
    }
    var closed = [Double?](repeating: nil, count: count)
    let deadline = Date().addingTimeInterval(within)
    while Date() < deadline && closed.contains(where: { $0 == nil }) {
        for (index, entry) in sockets.enumerated() where closed[index] == nil {
            var buffer = [UInt8](repeating: 0, count: 64)
            let received = recv(entry.fd, &buffer, buffer.count, Int32(MSG_DONTWAIT))
            if received == 0 || (received < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
                closed[index] = Date().timeIntervalSince(entry.opened)
            }
        }
        usleep(50_000)
    }
    for entry in sockets { close(entry.fd) }
    return closed
}
