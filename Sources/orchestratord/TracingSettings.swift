/// Trace export settings: `otlp-endpoint`, `otlp-service-name`, `trace-sample-ratio`.
struct TracingSettings: Sendable {
    /// The collector's OTLP/HTTP base URL (`http://127.0.0.1:4318`); nil = tracing off.
    var otlpEndpoint: String?
    /// `service.name` of every exported span.
    var serviceName: String
    /// Fraction of traces started here that are recorded; a caller's `traceparent` sampled flag wins.
    var sampleRatio: Double

    init(_ settings: ResolvedSettings) throws {
        otlpEndpoint = settings.value("otlp-endpoint").flatMap { $0.isEmpty ? nil : $0 }
        serviceName = settings.value("otlp-service-name").flatMap { $0.isEmpty ? nil : $0 } ?? "orchestratord"
        let ratioText = settings.value("trace-sample-ratio") ?? "1"
        guard let ratio = Double(ratioText), (0...1).contains(ratio) else {
            throw SettingsError(description: "trace-sample-ratio \"\(ratioText)\" must be a number in 0...1")
        }
        sampleRatio = ratio
        if let endpoint = otlpEndpoint, !endpoint.hasPrefix("http://") {
            throw SettingsError(description: "otlp-endpoint \"\(endpoint)\" must be an http:// URL such as http://127.0.0.1:4318")
        }
    }

    var isEnabled: Bool { otlpEndpoint != nil }
}
