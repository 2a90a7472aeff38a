internal import CNGRPCShims

#if canImport(Glibc)
    import Glibc
#endif

/// Address helpers over `sockaddr`. Pure functions, any thread.
enum SocketAddress {
    /// `host:port` (IPv6 in brackets) for logs and `ServerContext.peer`.
    static func describe(_ address: UnsafePointer<sockaddr>) -> String {
        var host = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        switch Int32(address.pointee.sa_family) {
        case AF_INET:
            return address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { v4 in
                var addr = v4.pointee.sin_addr
                inet_ntop(AF_INET, &addr, &host, socklen_t(host.count))
                return "\(cText(host)):\(UInt16(bigEndian: v4.pointee.sin_port))"
            }
        case AF_INET6:
            return address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { v6 in
                var addr = v6.pointee.sin6_addr
                inet_ntop(AF_INET6, &addr, &host, socklen_t(host.count))
                return "[\(cText(host))]:\(UInt16(bigEndian: v6.pointee.sin6_port))"
            }
        default:
            return "unknown"
        }
    }

    /// The port a socket is bound to.
    static func localPort(of fd: Int32) -> Int {
        Int(cngrpc_local_port(fd))
    }

    /// Resolves `host:port` (numeric or a name) and calls `body` with the first stream address.
    static func withResolved<Result>(
        host: String, port: Int, passive: Bool, _ body: (UnsafePointer<sockaddr>, Int32) -> Result
    ) -> Result? {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_family = AF_UNSPEC
        if passive { hints.ai_flags = AI_PASSIVE }
        var list: UnsafeMutablePointer<addrinfo>?
        let lookupHost = host.isEmpty ? nil : host
        guard getaddrinfo(lookupHost, String(port), &hints, &list) == 0, let list else { return nil }
        defer { freeaddrinfo(list) }
        guard let address = list.pointee.ai_addr else { return nil }
        return body(address, Int32(list.pointee.ai_addrlen))
    }
}

/// A NUL-terminated C buffer as a String.
func cText(_ buffer: [CChar]) -> String {
    String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
