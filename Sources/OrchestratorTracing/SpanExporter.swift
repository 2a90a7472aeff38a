import Synchronization

/// Sends a batch of finished spans somewhere. Called only on the batch processor's thread, so it
/// may block (on the network) for up to its own timeout.
public protocol SpanExporter: Sendable {
    func export(_ spans: [SpanData]) throws(ExportError)
}

/// OTLP over HTTP with the JSON encoding: POSTs each batch to `<endpoint>/v1/traces`.
public struct OTLPHTTPExporter: SpanExporter {
    public let endpoint: HTTPEndpoint
    let encoding: OTLPJSONEncoding
    let timeoutSeconds: Int

    /// - Parameter endpoint: the collector's base URL (`http://127.0.0.1:4318`), as
    ///   `OTEL_EXPORTER_OTLP_ENDPOINT` would be; a URL already ending in `/v1/traces` is used as is.
    public init(endpoint: String, serviceName: String, resourceAttributes: [String: SpanAttribute] = [:], timeoutSeconds: Int = 5) throws(ExportError) {
        let base = try HTTPEndpoint(url: endpoint)
        self.endpoint = base.path.hasSuffix("/v1/traces") ? base : base.appending(path: "/v1/traces")
        encoding = OTLPJSONEncoding(serviceName: serviceName, resourceAttributes: resourceAttributes)
        self.timeoutSeconds = timeoutSeconds
    }

    public func export(_ spans: [SpanData]) throws(ExportError) {
        let status = try endpoint.post(encoding.encode(spans), contentType: "application/json", timeoutSeconds: timeoutSeconds)
        guard (200..<300).contains(status) else {
            throw ExportError("collector \(endpoint) answered HTTP \(status)")
        }
    }
}

/// Keeps exported spans in memory: the fake beside `OTLPHTTPExporter`, for tests.
public final class InMemorySpanExporter: SpanExporter {
    private let stored = Mutex<[SpanData]>([])

    public init() {}

    public func export(_ spans: [SpanData]) throws(ExportError) {
        stored.withLock { $0.append(contentsOf: spans) }
    }

    public var spans: [SpanData] { stored.withLock { $0 } }
}

/// Hands each finished span straight to an exporter on the calling thread. For tests only:
/// servers use `BatchSpanProcessor`, which never blocks the caller.
public struct SimpleSpanProcessor: SpanProcessor {
    let exporter: any SpanExporter

    public init(exporter: any SpanExporter) { self.exporter = exporter }

    public func onEnd(_ span: SpanData) { try? exporter.export([span]) }
}
