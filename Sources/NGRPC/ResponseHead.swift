/// A response header block (headers or trailers) collected by the client's header callback.
/// Loop thread only.
struct ResponseHead {
    var httpStatus: Int?
    var contentType: String?
    var grpcStatus: String?
    var grpcMessage: String?
    var statusDetails: [UInt8]?
    var encoding: String?
    var metadata = Metadata()
    var listSize = 0

    mutating func add(name: String, value: String) {
        listSize += name.utf8.count + value.utf8.count + 32
        switch name {
        case ":status": httpStatus = Int(value)
        case "content-type": contentType = value
        case "grpc-status": grpcStatus = value
        case "grpc-message": grpcMessage = PercentEncoding.decode(value)
        case "grpc-status-details-bin": statusDetails = Base64.decode(value)
        case "grpc-encoding": encoding = value
        default:
            guard !MetadataRules.isReserved(name), let values = MetadataRules.decodeValues(key: name, value: value) else {
                return
            }
            for decoded in values { metadata.add(name, value: decoded) }
        }
    }

    /// The call's status from a trailer block (or a trailers-only response).
    var status: RPCStatus {
        if let httpStatus, httpStatus != 200 { return Self.statusForHTTP(httpStatus) }
        guard let text = grpcStatus, let value = Int(text) else {
            return RPCStatus(.unknown, "response ended without grpc-status")
        }
        let code = RPCStatus.Code(rawValue: value) ?? .unknown
        return RPCStatus(code, grpcMessage ?? "", details: statusDetails)
    }

    /// gRPC's mapping of HTTP statuses for responses that are not gRPC at all.
    static func statusForHTTP(_ status: Int) -> RPCStatus {
        let code: RPCStatus.Code =
            switch status {
            case 400: .internal
            case 401: .unauthenticated
            case 403: .permissionDenied
            case 404: .unimplemented
            case 429, 502, 503, 504: .unavailable
            default: .unknown
            }
        return RPCStatus(code, "HTTP status \(status)")
    }
}
