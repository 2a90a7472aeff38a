import Foundation
import Synchronization
import Testing

@testable import OrchestratorTracing

#if canImport(Glibc)
    import Glibc
#endif

/// An exporter that waits on a gate: a collector that stopped answering.
final class StuckExporter: SpanExporter {
    let gate = DispatchSemaphore(value: 0)
    let received = Mutex(0)
    func export(_ spans: [SpanData]) throws(ExportError) {
        gate.wait()
        received.withLock { $0 += spans.count }
    }
}

/// A one-shot HTTP/1.1 server on 127.0.0.1: accepts one connection, reads one request, answers
/// `status`, and hands back what it read.
final class OneShotHTTPServer: @unchecked Sendable {
    let port: Int
    private let listener: Int32
    private let request = Mutex<(head: String, body: [UInt8])?>(nil)
    private let done = DispatchSemaphore(value: 0)

    init(status: Int) throws {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.listener = listener
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        try withUnsafeMutablePointer(to: &address) { pointer in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { raw in
                guard bind(listener, raw, length) == 0, listen(listener, 1) == 0, getsockname(listener, raw, &length) == 0 else {
                    throw ExportError("bind failed")
                }
            }
        }
        port = Int(UInt16(bigEndian: address.sin_port))
        Thread.detachNewThread { [self] in
            let connection = accept(listener, nil, nil)
            var bytes: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 4096)
            while true {
                let count = chunk.withUnsafeMutableBytes { recv(connection, $0.baseAddress, $0.count, 0) }
                if count <= 0 { break }
                bytes += chunk[0..<count]
                if let split = Self.headerEnd(bytes) {
                    let head = String(decoding: bytes[..<split], as: UTF8.self)
                    let length = head.split(separator: "\r\n").first { $0.lowercased().hasPrefix("content-length:") }
                        .flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) } ?? 0
                    if bytes.count - split - 4 >= length {
                        request.withLock { $0 = (head, Array(bytes[(split + 4)...])) }
                        break
                    }
                }
            }
            let answer = "HTTP/1.1 \(status) X\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
            _ = answer.withCString { send(connection, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
            close(connection)
            done.signal()
        }
    }

    deinit { close(listener) }

    static func headerEnd(_ bytes: [UInt8]) -> Int? {
        guard bytes.count >= 4 else { return nil }
        for index in 0...(bytes.count - 4) where bytes[index..<(index + 4)].elementsEqual([13, 10, 13, 10]) { return index }
        return nil
    }

    func received() -> (head: String, body: [UInt8])? {
        _ = done.wait(timeout: .now() + 10)
        return request.withLock { $0 }
    }
}

@Suite("Span export")
struct ExportTests {
    func span(_ name: String) -> SpanData {
        SpanData(traceID: "4bf92f3577b34da6a3ce929d0e0e4736", spanID: TraceIdentifiers.randomSpanID(), parentSpanID: nil, name: name,
                 kind: .internal, startUnixNanos: 1, endUnixNanos: 2)
    }

    @Test func aStuckCollectorMakesTheQueueDropAndCountInsteadOfBlocking() async throws {
        let exporter = StuckExporter()
        var configuration = BatchSpanProcessor.Configuration()
        configuration.maxQueueSize = 10
        configuration.maxBatchSize = 5
        configuration.scheduleDelayMillis = 10
        let processor = BatchSpanProcessor(exporter: exporter, configuration: configuration)
        // The first batch is taken by the (stuck) export; the queue then fills up and overflows.
        for index in 0..<5 { processor.onEnd(span("a\(index)")) }
        try await Task.sleep(for: .milliseconds(100))
        // The export is stuck until the gate opens below: had onEnd waited for the collector,
        // this loop would never return.
        for index in 0..<100 { processor.onEnd(span("b\(index)")) }
        let stuck = processor.statistics
        #expect(stuck.queued == 10)
        #expect(stuck.dropped == 90)
        for _ in 0..<10 { exporter.gate.signal() }
        await processor.shutdown()
        #expect(exporter.received.withLock { $0 } == 15)
        #expect(processor.statistics.exported == 15)
    }

    @Test func shutdownWithAFailingCollectorGivesUpAfterOneBatch() async throws {
        /// A collector that answers every export with an error after a delay (a timeout, say).
        final class FailingExporter: SpanExporter {
            let calls = Mutex(0)
            func export(_ spans: [SpanData]) throws(ExportError) {
                calls.withLock { $0 += 1 }
                Thread.sleep(forTimeInterval: 0.05)
                throw ExportError("collector down")
            }
        }
        let exporter = FailingExporter()
        var configuration = BatchSpanProcessor.Configuration()
        configuration.maxBatchSize = 5
        configuration.scheduleDelayMillis = 60_000
        let health = Mutex<[String?]>([])
        let processor = BatchSpanProcessor(exporter: exporter, configuration: configuration) { error in
            health.withLock { $0.append(error?.description) }
        }
        for index in 0..<1000 { processor.onEnd(span("s\(index)")) }
        // Counted, not timed (a loaded machine stretches any wall-clock bound): once shutdown is
        // asked for, the export in flight may finish and one more batch may fail, then it gives
        // up on the ~200 batches left instead of trying each.
        let callsBeforeShutdown = exporter.calls.withLock { $0 }
        await processor.shutdown()
        #expect(exporter.calls.withLock { $0 } - callsBeforeShutdown <= 2)
        let statistics = processor.statistics
        #expect(statistics.exported == 0)
        #expect(statistics.failedSpans + statistics.dropped == 1000)
        #expect(statistics.queued == 0)
        // Spans ended after shutdown are dropped and counted.
        processor.onEnd(span("late"))
        #expect(processor.statistics.dropped == statistics.dropped + 1)
        // One health change (failing), not one per batch.
        #expect(health.withLock { $0 } == ["collector down"])
    }

    @Test func endpointParsing() throws {
        #expect(try HTTPEndpoint(url: "http://collector:4318").description == "http://collector:4318/")
        #expect(try HTTPEndpoint(url: "http://[::1]:4318/base").description == "http://[::1]:4318/base")
        #expect(try HTTPEndpoint(url: "http://localhost").port == 80)
        #expect(try OTLPHTTPExporter(endpoint: "http://h:4318", serviceName: "s").endpoint.path == "/v1/traces")
        #expect(try OTLPHTTPExporter(endpoint: "http://h:4318/otel/", serviceName: "s").endpoint.path == "/otel/v1/traces")
        #expect(try OTLPHTTPExporter(endpoint: "http://h:4318/v1/traces", serviceName: "s").endpoint.path == "/v1/traces")
        #expect(throws: ExportError.self) { try HTTPEndpoint(url: "https://h:4318") }
        #expect(throws: ExportError.self) { try HTTPEndpoint(url: "http://h:99999") }
        #expect(throws: ExportError.self) { try HTTPEndpoint(url: "http://:4318") }
    }

    @Test func postsOTLPJSONToV1Traces() throws {
        let server = try OneShotHTTPServer(status: 200)
        let exporter = try OTLPHTTPExporter(endpoint: "http://127.0.0.1:\(server.port)", serviceName: "orchestratord")
        try exporter.export([span("exported")])
        let request = try #require(server.received())
        #expect(request.head.hasPrefix("POST /v1/traces HTTP/1.1\r\n"))
        #expect(request.head.lowercased().contains("content-type: application/json"))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(request.body)) as? [String: Any])
        #expect(object["resourceSpans"] != nil)
        #expect(String(decoding: request.body, as: UTF8.self).contains("\"name\":\"exported\""))
    }

    @Test func aCollectorErrorOrNoCollectorIsAnExportError() throws {
        let server = try OneShotHTTPServer(status: 503)
        let exporter = try OTLPHTTPExporter(endpoint: "http://127.0.0.1:\(server.port)", serviceName: "orchestratord")
        #expect(throws: ExportError.self) { try exporter.export([span("x")]) }
        _ = server.received()
        // Port 1 on loopback: nothing listens, the connection is refused at once.
        let nowhere = try OTLPHTTPExporter(endpoint: "http://127.0.0.1:1", serviceName: "orchestratord", timeoutSeconds: 1)
        #expect(throws: ExportError.self) { try nowhere.export([span("x")]) }
    }
}
