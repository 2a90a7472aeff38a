internal import CNGHTTP2

/// An outgoing header list built into one byte buffer, turned into `nghttp2_nv`s only for the
/// duration of a submit call (nghttp2 copies names and values it is given without NO_COPY flags).
struct HeaderBlock {
    private var bytes: [UInt8] = []
    private var fields: [(name: Range<Int>, value: Range<Int>)] = []

    init() {
        bytes.reserveCapacity(256)
        fields.reserveCapacity(8)
    }

    mutating func add(_ name: String, _ value: String) {
        let nameStart = bytes.count
        bytes.append(contentsOf: name.utf8)
        let valueStart = bytes.count
        bytes.append(contentsOf: value.utf8)
        fields.append((nameStart..<valueStart, valueStart..<bytes.count))
    }

    /// Adds application metadata: reserved keys are skipped (the transport owns them), binary
    /// values are base64-encoded without padding, and string values that HTTP/2 forbids are
    /// dropped rather than sent (nghttp2 would reject the whole header block).
    mutating func add(_ metadata: Metadata) {
        for (key, value) in metadata where !MetadataRules.isReserved(key) && MetadataRules.isValidKey(key) {
            switch value {
            case .string(let text):
                guard MetadataRules.isValidValue(text) else { continue }
                if key.hasSuffix("-bin") {
                    add(key, Base64.encode(Array(text.utf8), padded: false))
                } else {
                    add(key, text)
                }
            case .binary(let data):
                add(key, Base64.encode(data, padded: false))
            }
        }
    }

    var count: Int { fields.count }

    /// The size HTTP/2 counts against SETTINGS_MAX_HEADER_LIST_SIZE: name + value + 32 per field.
    var listSize: Int { bytes.count + 32 * fields.count }

    /// Calls `body` with an `nghttp2_nv` array valid only during the call. nghttp2 takes mutable
    /// pointers but only reads (and copies) the bytes, so the buffer is lent without a copy.
    func withNameValues<Result>(_ body: (UnsafePointer<nghttp2_nv>, Int) -> Result) -> Result {
        bytes.withUnsafeBufferPointer { buffer -> Result in
            // Nil only when there are no fields, and then it is never read.
            let base = buffer.baseAddress.map { UnsafeMutablePointer(mutating: $0) }
            return withUnsafeTemporaryAllocation(of: nghttp2_nv.self, capacity: max(1, fields.count)) { nvs in
                for (index, field) in fields.enumerated() {
                    nvs[index] = nghttp2_nv(
                        name: base! + field.name.lowerBound, value: base! + field.value.lowerBound,
                        namelen: field.name.count, valuelen: field.value.count,
                        flags: UInt8(NGHTTP2_NV_FLAG_NONE.rawValue))
                }
                return body(UnsafePointer(nvs.baseAddress!), fields.count)
            }
        }
    }
}

/// Which metadata keys the application may see and send.
enum MetadataRules {
    /// Keys owned by HTTP/2 or the gRPC transport; never exposed in `Metadata`, never sent from it.
    static func isReserved(_ key: String) -> Bool {
        // The one `grpc-` key servers set themselves: how long a client should wait before retrying.
        if key == "grpc-retry-pushback-ms" { return false }
        if key.hasPrefix(":") || key.hasPrefix("grpc-") { return true }
        switch key {
        case "content-type", "te", "connection", "host", "keep-alive", "proxy-connection", "transfer-encoding",
            "upgrade", "content-length":
            return true
        default:
            return false
        }
    }

    /// Lower-case token characters only, as HTTP/2 requires.
    static func isValidKey(_ key: String) -> Bool {
        !key.isEmpty
            && key.utf8.allSatisfy { byte in
                (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x30 && byte <= 0x39) || byte == 0x2D || byte == 0x5F
                    || byte == 0x2E
            }
    }

    /// Printable ASCII and spaces (gRPC's ASCII-value rule), without leading/trailing whitespace.
    static func isValidValue(_ value: String) -> Bool {
        value.utf8.allSatisfy { $0 >= 0x20 && $0 <= 0x7E }
            && value.utf8.first != 0x20 && value.utf8.last != 0x20
    }

    /// Decodes one received header into metadata values; `-bin` values are base64 (padded or
    /// not), and several binary values may arrive comma-joined in one field. Returns nil for an
    /// undecodable binary value (the header is then dropped).
    static func decodeValues(key: String, value: String) -> [Metadata.Value]? {
        guard key.hasSuffix("-bin") else { return [.string(value)] }
        var values: [Metadata.Value] = []
        for part in value.split(separator: ",", omittingEmptySubsequences: false) {
            guard let decoded = Base64.decode(part.trimmingSpaces) else { return nil }
            values.append(.binary(decoded))
        }
        return values
    }
}

extension Substring {
    var trimmingSpaces: Substring {
        var result = self
        while result.first == " " { result = result.dropFirst() }
        while result.last == " " { result = result.dropLast() }
        return result
    }
}
