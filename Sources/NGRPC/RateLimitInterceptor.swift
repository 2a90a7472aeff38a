/// Per-identity rate limiting: each call takes a token from its caller's bucket; a caller over
/// the limit gets RESOURCE_EXHAUSTED "rate limit exceeded; retry after N ms" with the wait in the
/// `grpc-retry-pushback-ms` trailer (which gRPC clients with a retry policy honour) and a
/// `google.rpc.RetryInfo` in `grpc-status-details-bin`.
///
/// Place it after authentication, so `key` can read the authenticated identity from the context;
/// without one, key on `ServerContext.peerAddress`.
public struct RateLimitInterceptor: ServerInterceptor {
    public let buckets: TokenBucketTable
    /// Which methods count; the others pass untouched (health checks, say).
    public let applies: @Sendable (MethodDescriptor) -> Bool
    public let key: @Sendable (ServerContext) -> String

    public init(
        buckets: TokenBucketTable, applies: @escaping @Sendable (MethodDescriptor) -> Bool = { _ in true },
        key: @escaping @Sendable (ServerContext) -> String = { $0.peerAddress }
    ) {
        self.buckets = buckets
        self.applies = applies
        self.key = key
    }

    public func intercept(
        source: any RawMessageSource, sink: any RawMessageSink, context: ServerContext, next: RawHandler
    ) async throws {
        if applies(context.method), case .limited(let retryAfter) = buckets.take(key(context)) {
            throw Self.status(retryAfter: retryAfter, context: context)
        }
        try await next(source, sink, context)
    }

    /// The status for a limited call; also sets the pushback trailer on `context`.
    static func status(retryAfter: Duration, context: ServerContext) -> RPCStatus {
        let components = retryAfter.components
        let nanos = Int64(components.attoseconds / 1_000_000_000)
        // Rounded up: a client that waits exactly this long finds a token.
        let millis = max(1, components.seconds * 1000 + (nanos + 999_999) / 1_000_000)
        context.trailers.set("grpc-retry-pushback-ms", String(millis))
        let message = "rate limit exceeded; retry after \(millis) ms"
        var status = RPCStatus(.resourceExhausted, message)
        status.details = RetryInfoEncoding.status(code: RPCStatus.Code.resourceExhausted.rawValue, message: message, retryAfter: retryAfter)
        return status
    }
}

/// `google.rpc.Status { code, message, details: [Any(google.rpc.RetryInfo { retry_delay })] }`
/// written with the protobuf wire format (three small messages; no generated code needed).
enum RetryInfoEncoding {
    static let typeURL = "type.googleapis.com/google.rpc.RetryInfo"

    static func status(code: Int, message: String, retryAfter: Duration) -> [UInt8] {
        let components = retryAfter.components
        var duration: [UInt8] = []
        if components.seconds != 0 { field(1, varint: UInt64(components.seconds), into: &duration) }
        let nanos = components.attoseconds / 1_000_000_000
        if nanos != 0 { field(2, varint: UInt64(nanos), into: &duration) }
        var retryInfo: [UInt8] = []
        field(1, bytes: duration, into: &retryInfo)
        var any: [UInt8] = []
        field(1, bytes: Array(typeURL.utf8), into: &any)
        field(2, bytes: retryInfo, into: &any)
        var out: [UInt8] = []
        field(1, varint: UInt64(code), into: &out)
        field(2, bytes: Array(message.utf8), into: &out)
        field(3, bytes: any, into: &out)
        return out
    }

    private static func varint(_ value: UInt64, into out: inout [UInt8]) {
        var v = value
        while v >= 0x80 {
            out.append(UInt8(v & 0x7F) | 0x80)
            v >>= 7
        }
        out.append(UInt8(v))
    }

    private static func field(_ number: UInt64, varint value: UInt64, into out: inout [UInt8]) {
        varint(number << 3, into: &out)
        varint(value, into: &out)
    }

    private static func field(_ number: UInt64, bytes: [UInt8], into out: inout [UInt8]) {
        varint(number << 3 | 2, into: &out)
        varint(UInt64(bytes.count), into: &out)
        out += bytes
    }
}
