#if canImport(Glibc)
    import Glibc
#endif

/// Why an export to the collector failed.
public struct ExportError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// An `http://host:port/path` URL, parsed once at start-up.
public struct HTTPEndpoint: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var path: String

    /// Parses `http://host[:port][/path]` (IPv6 hosts in brackets). Only cleartext HTTP: run
    /// the OpenTelemetry Collector beside the server, as its documentation suggests.
    public init(url: String) throws(ExportError) {
        guard url.hasPrefix("http://") else {
            throw ExportError("\"\(url)\" is not an http:// URL (https collectors are not supported; use a local collector)")
        }
        let rest = url.dropFirst("http://".count)
        let authority = rest.prefix { $0 != "/" }
        let path = rest.dropFirst(authority.count)
        var host = Substring(authority)
        var port = 80
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { throw ExportError("\"\(url)\": unclosed IPv6 bracket") }
            host = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if after.hasPrefix(":") {
                guard let value = Int(after.dropFirst()) else { throw ExportError("\"\(url)\": bad port") }
                port = value
            } else if !after.isEmpty {
                throw ExportError("\"\(url)\": unexpected text after the host")
            }
        } else if let colon = authority.lastIndex(of: ":") {
            host = authority[..<colon]
            guard let value = Int(authority[authority.index(after: colon)...]) else { throw ExportError("\"\(url)\": bad port") }
            port = value
        }
        guard !host.isEmpty, (1...65535).contains(port) else { throw ExportError("\"\(url)\": needs a host and a port in 1...65535") }
        self.host = String(host)
        self.port = port
        self.path = path.isEmpty ? "/" : String(path)
    }

    public var description: String { "http://\(host.contains(":") ? "[\(host)]" : host):\(port)\(path)" }

    /// This endpoint with `suffix` appended to its path (no doubled slash).
    public func appending(path suffix: String) -> HTTPEndpoint {
        var copy = self
        copy.path = (path.hasSuffix("/") ? String(path.dropLast()) : path) + suffix
        return copy
    }

    /// POSTs `body` and returns the response status code. Blocking, with `timeoutSeconds` on
    /// connecting, sending and receiving: call it from the exporter's own thread only.
    public func post(_ body: [UInt8], contentType: String, timeoutSeconds: Int) throws(ExportError) -> Int {
        let socket = try connect(timeoutSeconds: timeoutSeconds)
        defer { close(socket) }
        let hostHeader = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        let head = "POST \(path) HTTP/1.1\r\nHost: \(hostHeader)\r\nContent-Type: \(contentType)\r\n"
            + "Content-Length: \(body.count)\r\nConnection: close\r\nUser-Agent: orchestratord\r\n\r\n"
        try send(socket, Array(head.utf8) + body)
        return try readStatus(socket)
    }

    private func connect(timeoutSeconds: Int) throws(ExportError) -> Int32 {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_family = AF_UNSPEC
        var list: UnsafeMutablePointer<addrinfo>?
        let resolved = getaddrinfo(host, String(port), &hints, &list)
        guard resolved == 0, let first = list else {
            throw ExportError("cannot resolve \(host): \(String(cString: gai_strerror(resolved)))")
        }
        defer { freeaddrinfo(list) }
        var lastError = "no address"
        var entry: UnsafeMutablePointer<addrinfo>? = first
        while let candidate = entry {
            entry = candidate.pointee.ai_next
            let socket = Glibc.socket(candidate.pointee.ai_family, candidate.pointee.ai_socktype, candidate.pointee.ai_protocol)
            if socket < 0 { continue }
            var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
            // SO_SNDTIMEO also bounds connect() on Linux.
            setsockopt(socket, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            if Glibc.connect(socket, candidate.pointee.ai_addr, candidate.pointee.ai_addrlen) == 0 { return socket }
            lastError = String(cString: strerror(errno))
            close(socket)
        }
        throw ExportError("cannot connect to \(self): \(lastError)")
    }

    private func send(_ socket: Int32, _ bytes: [UInt8]) throws(ExportError) {
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { buffer in
                Glibc.send(socket, buffer.baseAddress! + offset, buffer.count - offset, Int32(MSG_NOSIGNAL))
            }
            if written < 0 {
                if errno == EINTR { continue }
                throw ExportError("sending to \(self) failed: \(String(cString: strerror(errno)))")
            }
            offset += written
        }
    }

    /// Reads up to the end of the status line and returns its code.
    private func readStatus(_ socket: Int32) throws(ExportError) -> Int {
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1024)
        while !received.contains(0x0A) && received.count < 8192 {
            let count = chunk.withUnsafeMutableBytes { recv(socket, $0.baseAddress, $0.count, 0) }
            if count < 0 {
                if errno == EINTR { continue }
                throw ExportError("no answer from \(self): \(String(cString: strerror(errno)))")
            }
            if count == 0 { break }
            received.append(contentsOf: chunk[0..<count])
        }
        let line = String(decoding: received.prefix { $0 != 0x0D && $0 != 0x0A }, as: UTF8.self)
        let fields = line.split(separator: " ")
        guard fields.count >= 2, fields[0].hasPrefix("HTTP/1."), let code = Int(fields[1]) else {
            throw ExportError("\(self) answered something that is not HTTP/1.x: \"\(line.prefix(80))\"")
        }
        return code
    }
}

