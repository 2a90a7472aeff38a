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

    /// nil when a listening socket could be bound to the address (then closed), else why not,
    /// worded as `Listener.bind` words it.
    private static func trialBind(host: String, port: Int) -> String? {
        let result = SocketAddress.withResolved(host: host, port: port, passive: true) { address, length -> String? in
            let fd = socket(Int32(address.pointee.sa_family), Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { return Listener.failureMessage(host: host, port: port) }
            defer { close(fd) }
            // As the real listener (LEV_OPT_REUSEABLE): a port in TIME_WAIT is usable.
            var on: Int32 = 1
            _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, socklen_t(MemoryLayout<Int32>.size))
            guard bind(fd, address, socklen_t(length)) == 0 else {
                return Listener.failureMessage(host: host, port: port)
            }
            return nil
        }
        guard let result else { return Listener.unresolvedMessage(host: host, port: port) }
        return result
    }
}
