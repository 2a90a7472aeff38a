internal import CNGRPCShims

/// Request headers of one server stream, collected by the header callback before the handler
/// starts. Loop thread only.
struct RequestHead {
    var method: String?
    var path: String?
    /// Whether `content-type` was gRPC's; its text is kept only when it was not (for the error),
    /// which saves a heap String per request ("application/grpc" is too long for a small string).
    var hasGRPCContentType = false
    var contentType: String?
    /// The codec an `application/grpc+<codec>` content type names, when it is not protobuf
    /// (`+json`, say): messages here are protobuf only.
    var otherCodec: String?
    var timeout: String?
    var encoding: String?
    var acceptEncoding: String?
    var authority: String?
    var metadata = Metadata()
    /// Header-list size as SETTINGS_MAX_HEADER_LIST_SIZE counts it: name + value + 32 per field.
    var listSize = 0
    var fieldCount = 0
    /// Set when a limit was passed; the rest of the block is ignored and the call is refused.
    var tooLarge = false
    /// A `-bin` value that was not valid base64.
    var badBinaryHeader: String?

    /// Header names the transport reads, recognised from their bytes without building Strings
    /// (the header callback runs for every field of every request).
    private enum KnownName {
        case method, path, authority, otherPseudo, contentType, timeout, encoding, acceptEncoding, te
        /// Owned by HTTP/2 or the gRPC transport (`MetadataRules.isReserved`): never metadata.
        case reserved
        case other

        init(_ name: UnsafeBufferPointer<UInt8>) {
            func equals(_ literal: StaticString) -> Bool { RequestHead.bytes(name, equal: literal) }
            guard let first = name.first else {
                self = .other
                return
            }
            if first == UInt8(ascii: ":") {
                self = equals(":path") ? .path : equals(":method") ? .method : equals(":authority") ? .authority : .otherPseudo
                return
            }
            switch name.count {
            case 2: self = equals("te") ? .te : .other
            case 12: self = equals("content-type") ? .contentType : equals("grpc-timeout") ? .timeout : .other
            case 13: self = equals("grpc-encoding") ? .encoding : .other
            case 20: self = equals("grpc-accept-encoding") ? .acceptEncoding : .other
            default: self = .other
            }
            if case .other = self, Self.isReserved(name) { self = .reserved }
        }

        /// `MetadataRules.isReserved` on the name's bytes (no String for the common headers).
        private static func isReserved(_ name: UnsafeBufferPointer<UInt8>) -> Bool {
            func equals(_ literal: StaticString) -> Bool { RequestHead.bytes(name, equal: literal) }
            if RequestHead.bytes(name, startWith: "grpc-") { return !equals("grpc-retry-pushback-ms") }
            switch name.count {
            case 4: return equals("host")
            case 7: return equals("upgrade")
            case 10: return equals("connection") || equals("keep-alive")
            case 14: return equals("content-length")
            case 16: return equals("proxy-connection")
            case 17: return equals("transfer-encoding")
            default: return false
            }
        }
    }

    /// Records one header field. Past the limits nothing more is kept, only counted, and the
    /// request is answered RESOURCE_EXHAUSTED however far past them the block goes. (Far past
    /// them, the stream used to be reset with INTERNAL_ERROR, which clients report as a server
    /// fault; the fields cost nghttp2 their decoding either way, HPACK state being per
    /// connection, and this only a count.)
    mutating func add(
        name: UnsafeBufferPointer<UInt8>, value: UnsafeBufferPointer<UInt8>, maxListSize: Int, maxFieldCount: Int
    ) {
        listSize += name.count + value.count + 32
        fieldCount += 1
        if listSize > maxListSize || fieldCount > maxFieldCount {
            tooLarge = true
            metadata = Metadata()
            return
        }
        if tooLarge { return }
        func text(_ bytes: UnsafeBufferPointer<UInt8>) -> String { String(decoding: bytes, as: UTF8.self) }
        switch KnownName(name) {
        case .method: method = text(value)
        case .path: path = text(value)
        case .authority: authority = text(value)
        case .contentType:
            hasGRPCContentType = Self.isGRPCContentType(value)
            contentType = hasGRPCContentType ? nil : text(value)
            otherCodec = hasGRPCContentType ? Self.otherCodec(value) : nil
        case .timeout: timeout = text(value)
        case .encoding: encoding = text(value)
        case .acceptEncoding: acceptEncoding = text(value)
        case .otherPseudo, .te, .reserved: break
        case .other:
            let key = text(name)
            if !key.hasSuffix("-bin") {
                metadata.appendLowercased(key, .string(text(value)))
            } else if let values = MetadataRules.decodeValues(key: key, value: text(value)) {
                for decoded in values { metadata.appendLowercased(key, decoded) }
            } else {
                badBinaryHeader = key
            }
        }
    }

    /// String convenience for tests.
    mutating func add(name: String, value: String, maxListSize: Int, maxFieldCount: Int) {
        var name = name
        var value = value
        name.withUTF8 { nameBytes in
            value.withUTF8 { valueBytes in
                add(name: nameBytes, value: valueBytes, maxListSize: maxListSize, maxFieldCount: maxFieldCount)
            }
        }
    }

    /// Whether the client accepts gzip-compressed responses.
    var acceptsGzip: Bool {
        guard let acceptEncoding else { return false }
        return acceptEncoding.split(separator: ",").contains { $0.trimmingSpaces == "gzip" }
    }

    /// `isGRPCContentType(_:)` on the header's bytes.
    static func isGRPCContentType(_ value: UnsafeBufferPointer<UInt8>) -> Bool {
        let prefix: StaticString = "application/grpc"
        guard bytes(value, startWith: prefix) else { return false }
        let count = prefix.utf8CodeUnitCount
        return value.count == count || value[count] == UInt8(ascii: "+") || value[count] == UInt8(ascii: ";")
    }

    /// The `<codec>` of `application/grpc+<codec>[;params]` unless it is `proto` (or absent).
    static func otherCodec(_ value: UnsafeBufferPointer<UInt8>) -> String? {
        let count = StaticString("application/grpc").utf8CodeUnitCount
        guard value.count > count, value[count] == UInt8(ascii: "+") else { return nil }
        let codec = String(
            decoding: value[(count + 1)...].prefix { $0 != UInt8(ascii: ";") }.filter { $0 != UInt8(ascii: " ") && $0 != UInt8(ascii: "\t") },
            as: UTF8.self
        ).lowercased()
        return codec.isEmpty || codec == "proto" ? nil : codec
    }

    static func bytes(_ bytes: UnsafeBufferPointer<UInt8>, equal literal: StaticString) -> Bool {
        literal.utf8CodeUnitCount == bytes.count && Self.bytes(bytes, startWith: literal)
    }

    static func bytes(_ bytes: UnsafeBufferPointer<UInt8>, startWith literal: StaticString) -> Bool {
        let count = literal.utf8CodeUnitCount
        return bytes.count >= count && (count == 0 || memcmp(literal.utf8Start, bytes.baseAddress!, count) == 0)
    }

    /// `application/grpc`, optionally followed by `+codec` or `;params`.
    static func isGRPCContentType(_ value: String) -> Bool {
        let prefix = "application/grpc"
        if value == prefix || value == "application/grpc+proto" { return true }
        guard value.hasPrefix(prefix) else { return false }
        let rest = value.dropFirst(prefix.count)
        return rest.isEmpty || rest.first == "+" || rest.first == ";"
    }
}
