internal import CNGHTTP2

/// A call's final status and trailing metadata, fitted to the header list size the client
/// announced (SETTINGS_MAX_HEADER_LIST_SIZE, counted as HTTP/2 does: name + value + 32 per field).
///
/// grpc-go, grpc-java and grpc++ treat a header block over their announced limit as a connection
/// error: a 5 KB INVALID_ARGUMENT (a 1,975-byte message and 2,873 bytes of details) sent to a
/// client that announced 3,000 bytes ended every call on the connection, an open WatchWorkflow or
/// an executor's Lease stream included (found by black-box testing with real clients). The status
/// code always goes out; what does not fit goes, in this order: the details
/// (`grpc-status-details-bin`), then the message is cut (with a note of its length), then the
/// trailing metadata, then the message altogether.
extension ServerStream {
    /// The client's announced limit, less a margin; nghttp2 reports UINT32_MAX when it announced
    /// none. The margin: clients count some fields by the form they parse them into, not the
    /// bytes sent (grpc core counts our 21-byte `grpc-accept-encoding` value as 23 bytes), so a
    /// block fitted to the byte exceeded the limit by two (measured with grpcio).
    static func peerHeaderListLimit(_ session: OpaquePointer) -> Int {
        min(Int(nghttp2_session_get_remote_settings(session, NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE)), softHeaderListLimit)
            - headerListMargin
    }

    static let headerListMargin = 64
    /// grpcio announces 16 KiB but refuses blocks past 8 KiB at random (its soft limit: 5 of 30
    /// identical calls got RESOURCE_EXHAUSTED instead of their status; found by black-box
    /// testing), and 8 KiB is gRPC's usual default: no status block is larger.
    static let softHeaderListLimit = 8192

    /// `base` (the fields that go first: `:status` and headers for a trailers-only response,
    /// nothing for trailers) with the status and `trailers`, as much of them as fits `limit`.
    static func statusBlock(base: HeaderBlock, status: RPCStatus, trailers: Metadata, limit: Int) -> HeaderBlock {
        var whole = base
        addStatus(status, to: &whole)
        whole.add(trailers)
        if whole.listSize <= limit { return whole }

        var withoutDetails = status
        withoutDetails.details = nil
        var lean = base
        addStatus(withoutDetails, to: &lean)
        lean.add(trailers)
        if lean.listSize <= limit || status.message.isEmpty && trailers.isEmpty { return lean }

        if let cut = withMessageCut(base: base, status: status, trailers: trailers, limit: limit) { return cut }
        if let cut = withMessageCut(base: base, status: status, trailers: Metadata(), limit: limit) { return cut }
        var bare = base
        bare.add("grpc-status", String(status.code.rawValue))
        return bare
    }

    /// The status with its message cut to what is left of `limit` after the rest; nil when no
    /// meaningful part of it fits.
    private static func withMessageCut(base: HeaderBlock, status: RPCStatus, trailers: Metadata, limit: Int) -> HeaderBlock? {
        var block = base
        block.add("grpc-status", String(status.code.rawValue))
        block.add(trailers)
        let room = limit - block.listSize - 32 - "grpc-message".utf8.count
        // Less than this holds no useful part of a message beside its truncation note.
        guard room >= 64 else { return nil }
        let message = PercentEncoding.encodeForTrailer(status.message, maxBytes: min(room, PercentEncoding.maxEncodedMessageBytes))
        if !message.isEmpty { block.add("grpc-message", message) }
        return block
    }
}
