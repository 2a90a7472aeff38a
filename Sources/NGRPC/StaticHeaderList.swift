internal import CNGHTTP2

/// Header lists that never change — a plain gRPC response's headers and an OK status's trailers —
/// as `nghttp2_nv` arrays over static strings, built once and submitted with nghttp2's NO_COPY
/// flags: neither a `HeaderBlock` buffer of ours nor nghttp2's copies of the names and values are
/// allocated for them on every call (only nghttp2's copy of the small nv array itself remains).
struct StaticHeaderList: @unchecked Sendable {
    /// Immortal: allocated once per list and never freed (two lists per process).
    let fields: UnsafeMutablePointer<nghttp2_nv>
    let count: Int

    init(_ pairs: [(name: StaticString, value: StaticString)]) {
        count = pairs.count
        fields = .allocate(capacity: pairs.count)
        let noCopy = UInt8(NGHTTP2_NV_FLAG_NO_COPY_NAME.rawValue | NGHTTP2_NV_FLAG_NO_COPY_VALUE.rawValue)
        for (index, pair) in pairs.enumerated() {
            // nghttp2 only reads through these pointers (NO_COPY: it keeps them, hence static strings).
            fields[index] = nghttp2_nv(
                name: UnsafeMutablePointer(mutating: pair.name.utf8Start), value: UnsafeMutablePointer(mutating: pair.value.utf8Start),
                namelen: pair.name.utf8CodeUnitCount, valuelen: pair.value.utf8CodeUnitCount, flags: noCopy)
        }
    }

    /// `:status 200`, gRPC's content type and the encodings we accept (`GZip.acceptEncodingHeader`).
    static let response = StaticHeaderList([
        (":status", "200"), ("content-type", "application/grpc"), ("grpc-accept-encoding", "identity,gzip,deflate"),
    ])

    /// The trailers of a call that ended OK with no message, details or trailing metadata.
    static let okTrailers = StaticHeaderList([("grpc-status", "0")])
}
