internal import CNGRPCShims

#if canImport(Glibc)
    import Glibc
#endif

extension GRPCServer {
    /// What `start()` would refuse in a listener, found without serving.
    public struct ListenerProblem: Error, Sendable, CustomStringConvertible {
        /// The listener's index in `ServerConfiguration.listeners`.
        public var listenerIndex: Int
        /// Whether its TLS files are at fault (else its address).
        public var isTLS: Bool
        public var description: String
    }

    /// Checks what `start()` checks in each listener — its TLS files load and match, its address
    /// resolves and can be bound (a trial socket, closed again) — without serving, so a caller
    /// can refuse a configuration before it does work it cannot undo, such as migrating a
    /// database. A port taken between this check and `start()` still fails there.
    public static func preflight(_ listeners: [ServerConfiguration.Listener]) -> [ListenerProblem] {
        var problems: [ListenerProblem] = []
        for (index, listener) in listeners.enumerated() {
            if let tls = listener.tls {
                do {
                    _ = try TLSContext(server: tls)
                } catch {
                    problems.append(ListenerProblem(listenerIndex: index, isTLS: true, description: error.description))
                }
            }
            if let failure = trialBind(host: listener.host, port: listener.port) {
                problems.append(ListenerProblem(listenerIndex: index, isTLS: false, description: failure))
            }
        }
        return problems
    }

    /// nil when a listening socket could be bound to each address `Listener.bind` listens on
    /// (then closed), else why not, worded as `Listener.bind` words it. A name's later addresses
    /// count too: `localhost:50051` with 127.0.0.1:50051 taken passed when only ::1 was tried,
    /// and the start failed after the migrations. The sockets stay open until all are bound,
    /// so with port 0 the later addresses try the port the first one got, as the listener does.
    private static func trialBind(host: String, port: Int) -> String? {
        guard case .success(let resolved) = SocketAddress.resolveAll(host: host, port: port, passive: true) else {
            return Listener.unresolvedMessage(host: host, port: port)
        }
        var sockets: [Int32] = []
        defer { sockets.forEach { close($0) } }
        var boundPort = port
        for (index, var address) in Listener.addressesToBind(resolved, host: host).enumerated() {
            if index > 0 { address.setPort(boundPort) }
            let failure = address.withPointer { pointer, length -> Int32 in
                let fd = socket(Int32(pointer.pointee.sa_family), Int32(SOCK_STREAM.rawValue), 0)
                guard fd >= 0 else { return cngrpc_errno() }
                sockets.append(fd)
                // As the real listener (LEV_OPT_REUSEABLE): a port in TIME_WAIT is usable.
                var on: Int32 = 1
                _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, socklen_t(MemoryLayout<Int32>.size))
                return bind(fd, pointer, socklen_t(length)) == 0 ? 0 : cngrpc_errno()
            }
            if failure != 0 {
                if index > 0 && Listener.skipsLaterAddress(failing: failure) { continue }
                return Listener.failureMessage(host: host, port: boundPort, errorNumber: failure)
            }
            if index == 0 { boundPort = SocketAddress.localPort(of: sockets[sockets.count - 1]) }
        }
        return nil
    }
}
