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

    /// One resolved address, copied out of getaddrinfo's list.
    struct Resolved {
        var storage: sockaddr_storage
        var length: socklen_t

        func withPointer<Result>(_ body: (UnsafePointer<sockaddr>, Int32) -> Result) -> Result {
            withUnsafePointer(to: storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, Int32(length)) } }
        }

        var family: Int32 { Int32(storage.ss_family) }

        mutating func setPort(_ port: Int) {
            let networkOrder = in_port_t(UInt16(port)).bigEndian
            let family = self.family
            withUnsafeMutablePointer(to: &storage) { pointer in
                switch family {
                case AF_INET: pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_port = networkOrder }
                case AF_INET6: pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { $0.pointee.sin6_port = networkOrder }
                default: break
                }
            }
        }
    }

    /// Every stream address of `host:port`, in getaddrinfo's order (RFC 6724: `localhost` is often
    /// `::1` first, then `127.0.0.1`), or getaddrinfo's message when there is none. Blocking.
    /// `passive`: addresses to listen on (an empty host is every interface).
    static func resolveAll(host: String, port: Int, passive: Bool = false) -> Swift.Result<[Resolved], ResolutionFailure> {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_family = AF_UNSPEC
        if passive { hints.ai_flags = AI_PASSIVE }
        var list: UnsafeMutablePointer<addrinfo>?
        let code = getaddrinfo(host.isEmpty && passive ? nil : host, String(port), &hints, &list)
        guard code == 0, let list else {
            return .failure(ResolutionFailure(message: code == 0 ? "no address" : String(cString: gai_strerror(code))))
        }
        defer { freeaddrinfo(list) }
        var addresses: [Resolved] = []
        var entry: UnsafeMutablePointer<addrinfo>? = list
        while let current = entry {
            if let address = current.pointee.ai_addr, Int(current.pointee.ai_addrlen) <= MemoryLayout<sockaddr_storage>.size,
               !addresses.contains(where: { Self.sameBytes($0, address, current.pointee.ai_addrlen) })
            {
                var storage = sockaddr_storage()
                withUnsafeMutableBytes(of: &storage) { target in
                    target.copyMemory(from: UnsafeRawBufferPointer(start: address, count: Int(current.pointee.ai_addrlen)))
                }
                addresses.append(Resolved(storage: storage, length: current.pointee.ai_addrlen))
            }
            entry = current.pointee.ai_next
        }
        return addresses.isEmpty ? .failure(ResolutionFailure(message: "no address")) : .success(addresses)
    }

    /// getaddrinfo lists an address once per protocol it could be: one listener each is enough.
    private static func sameBytes(_ resolved: Resolved, _ address: UnsafePointer<sockaddr>, _ length: socklen_t) -> Bool {
        guard resolved.length == length else { return false }
        return resolved.withPointer { pointer, _ in memcmp(pointer, address, Int(length)) == 0 }
    }

    struct ResolutionFailure: Error {
        var message: String
    }
}

/// A NUL-terminated C buffer as a String.
func cText(_ buffer: [CChar]) -> String {
    String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
