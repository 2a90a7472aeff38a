/// A request to the admin HTTP server, copied out of libevent before a handler sees it.
public struct AdminRequest: Sendable {
    public enum Method: String, Sendable {
        case get = "GET", head = "HEAD", put = "PUT", post = "POST"
        case delete = "DELETE", options = "OPTIONS", patch = "PATCH", trace = "TRACE", connect = "CONNECT"
        case other = "OTHER"
    }
    public var method: Method
    /// The path without the query string, e.g. `/metrics`.
    public var path: String
    public var query: String?
    public var body: [UInt8]

    public init(method: Method, path: String, query: String? = nil, body: [UInt8] = []) {
        self.method = method
        self.path = path
        self.query = query
        self.body = body
    }

    public var bodyText: String { String(decoding: body, as: UTF8.self) }
}

/// A response from an admin handler.
public struct AdminResponse: Sendable {
    public var status: Int
    public var contentType: String
    public var body: [UInt8]
    /// Headers besides Content-Type and Cache-Control, e.g. a 405's `Allow`.
    public var headers: [String: String] = [:]

    public init(status: Int, contentType: String = "text/plain; charset=utf-8", body: [UInt8]) {
        self.status = status
        self.contentType = contentType
        self.body = body
    }

    public static func text(_ status: Int, _ text: String) -> AdminResponse {
        AdminResponse(status: status, body: Array(text.utf8))
    }

    /// The reason phrase for the status line.
    var reason: String {
        switch status {
        case 200: "OK"
        case 204: "No Content"
        case 400: "Bad Request"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 500: "Internal Server Error"
        case 503: "Service Unavailable"
        default: "Status"
        }
    }
}

/// Admin handlers by path. A handler runs as Swift async code, off the admin loop's thread.
public struct AdminRoutes: Sendable {
    public typealias Handler = @Sendable (AdminRequest) async -> AdminResponse

    private var routes: [String: [AdminRequest.Method: Handler]] = [:]

    public init() {}

    /// Registers `handler` for `method` on `path`; `GET` handlers also answer `HEAD`.
    public mutating func add(_ method: AdminRequest.Method, _ path: String, _ handler: @escaping Handler) {
        routes[path, default: [:]][method] = handler
    }

    /// The response for `request`: the handler's, 404 for an unknown path, 405 for a known path
    /// without that method.
    public func respond(to request: AdminRequest) async -> AdminResponse {
        var response = await answer(request)
        if request.method == .head {
            // What GET would send, as RFC 9110 §9.3.2 allows, so a HEAD probe learns the size
            // (404 and 405 included).
            response.headers["Content-Length"] = String(response.body.count)
            response.body = []
        }
        return response
    }

    private func answer(_ request: AdminRequest) async -> AdminResponse {
        // No resource here is a tunnel: CONNECT's target is an authority (`host:port`), not a path,
        // and it got a 404 naming it as one.
        if request.method == .connect {
            return .text(405, "CONNECT is not allowed here: this is the admin HTTP server, not a proxy\n")
        }
        guard let methods = routes[request.path] else {
            return .text(404, "not found: \(request.path)\n")
        }
        let handler = methods[request.method] ?? (request.method == .head ? methods[.get] : nil)
        guard let handler else {
            // RFC 9110 §15.5.6: a 405 lists the methods the resource takes (GET implies HEAD);
            // the body says the same (it said GET alone beside `Allow: GET, HEAD`).
            var methodsAllowed = Set(methods.keys.map(\.rawValue))
            if methods[.get] != nil { methodsAllowed.insert("HEAD") }
            let allowed = methodsAllowed.sorted().joined(separator: ", ")
            var refusal = AdminResponse.text(405, "\(request.method.rawValue) is not allowed on \(request.path) (allowed: \(allowed))\n")
            refusal.headers["Allow"] = allowed
            return refusal
        }
        return await handler(request)
    }

    public var paths: [String] { routes.keys.sorted() }
}
