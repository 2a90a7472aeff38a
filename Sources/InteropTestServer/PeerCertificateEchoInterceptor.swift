import NGRPC

/// Test support: returns what the server knows about the caller's TLS client certificate in
/// response headers (`x-peer-subject`, `x-peer-sans`, `x-peer-serial`), so interop tests can check
/// `ServerContext.peerCertificate` from any gRPC client.
struct PeerCertificateEchoInterceptor: SynchronousServerInterceptor {
    func intercept(
        source: any RawMessageSource, sink: any RawMessageSink, context: ServerContext, next: RawHandler
    ) async throws {
        echoCertificate(context)
        try await next(source, sink, context)
    }

    func interceptSynchronously(request: [UInt8], context: ServerContext, next: RawSynchronousHandler) throws -> [UInt8]? {
        echoCertificate(context)
        return try next(request, context)
    }

    private func echoCertificate(_ context: ServerContext) {
        guard let certificate = context.peerCertificate else { return }
        var headers = context.responseHeaders
        headers.set("x-peer-subject", certificate.subject)
        headers.set("x-peer-sans", certificate.subjectAlternativeNames.joined(separator: ","))
        headers.set("x-peer-serial", certificate.serialNumber)
        context.responseHeaders = headers
    }
}
