/// Request headers of one server stream, collected by the header callback before the handler
/// starts. Loop thread only.
struct RequestHead {
    var method: String?
    var path: String?
    var contentType: String?
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

    /// Records one header field. Returns false when the block is so far past the limit that the
    /// stream should be reset outright instead of answered.
    mutating func add(name: String, value: String, maxListSize: Int, maxFieldCount: Int) -> Bool {
        listSize += name.utf8.count + value.utf8.count + 32
        fieldCount += 1
        if listSize > maxListSize || fieldCount > maxFieldCount {
            tooLarge = true
            metadata = Metadata()
            return listSize <= maxListSize * 4 && fieldCount <= maxFieldCount * 4
        }
        if tooLarge { return true }
        switch name {
        case ":method": method = value
        case ":path": path = value
        case ":authority": authority = value
        case "content-type": contentType = value
        case "grpc-timeout": timeout = value
        case "grpc-encoding": encoding = value
        case "grpc-accept-encoding": acceptEncoding = value
        default:
            guard !MetadataRules.isReserved(name) else { return true }
            if let values = MetadataRules.decodeValues(key: name, value: value) {
                for decoded in values { metadata.add(name, value: decoded) }
            } else {
                badBinaryHeader = name
            }
        }
        return true
    }

    /// Whether the client accepts gzip-compressed responses.
    var acceptsGzip: Bool {
        guard let acceptEncoding else { return false }
        return acceptEncoding.split(separator: ",").contains { $0.trimmingSpaces == "gzip" }
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
