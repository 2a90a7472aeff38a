import Foundation
import TestSupport
import Testing

@testable import NGRPC

/// Sockets are close-on-exec: a child process started while a server listens or a channel is
/// connected (the test suite starts PostgreSQL clusters; pg_ctl leaves a daemon holding every
/// descriptor it inherited) must not keep a port bound or a connection open.
@Suite("Sockets are not inherited by child processes")
struct DescriptorInheritanceTests {
    @Test func listeningAcceptedAndClientSocketsAreCloseOnExec() async throws {
        let loopback = try await Loopback.start { router in
            router.registerUnary(Echo.get) { (request: RawMessage, _) in request }
        }
        let port = try #require(loopback.server.port)
        let reply: RawMessage = try await loopback.channel.unary(Echo.get, request: RawMessage("x"))
        #expect(reply.text == "x")
        let sockets = Self.loopbackSockets(involving: port)
        // The listener and the accepted connection (local port), the channel's (peer port).
        #expect(sockets.filter { $0.local == port }.count >= 2, "\(sockets)")
        #expect(sockets.contains { $0.peer == port }, "\(sockets)")
        for socket in sockets {
            #expect(socket.closeOnExec, "socket \(socket) would be inherited by a child process")
        }
        await loopback.stop()
    }

    @Test func aChildStartedWhileListeningDoesNotKeepThePort() async throws {
        var router = RPCRouter()
        router.registerUnary(Echo.get) { (request: RawMessage, _) in request }
        let port = try #require(FreePort.belowEphemeralRange())
        var configuration = ServerConfiguration(listeners: [.init(host: "127.0.0.1", port: port)], router: router)
        configuration.ioThreads = 1
        let first = GRPCServer(configuration: configuration)
        try await first.start()
        let child = try Self.spawnSleeper()
        defer {
            kill(child, SIGKILL)
            var status: Int32 = 0
            waitpid(child, &status, 0)
        }
        await first.shutdown(grace: .milliseconds(100))
        let second = GRPCServer(configuration: configuration)
        try await second.start()
        let channel = try GRPCChannel(host: "127.0.0.1", port: port)
        let reply: RawMessage = try await channel.unary(Echo.get, request: RawMessage("again"))
        #expect(reply.text == "again")
        await channel.close()
        await second.shutdown(grace: .milliseconds(100))
    }

    struct LoopbackSocket: CustomStringConvertible {
        var fd: Int32
        var local: Int
        var peer: Int?
        var closeOnExec: Bool
        var description: String { "fd \(fd) local :\(local) peer \(peer.map { ":\($0)" } ?? "none") cloexec \(closeOnExec)" }
    }

    /// This process's IPv4 sockets whose local or peer port is `port` (other tests' sockets, on
    /// other ports, are left out).
    static func loopbackSockets(involving port: Int) -> [LoopbackSocket] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        return names.compactMap { Int32($0) }.compactMap { fd -> LoopbackSocket? in
            guard let local = portOf(fd, peer: false), local != 0 else { return nil }
            let peer = portOf(fd, peer: true)
            guard local == port || peer == port else { return nil }
            let flags = fcntl(fd, F_GETFD)
            return LoopbackSocket(fd: fd, local: local, peer: peer, closeOnExec: flags >= 0 && flags & FD_CLOEXEC != 0)
        }
    }

    private static func portOf(_ fd: Int32, peer: Bool) -> Int? {
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let result = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { peer ? getpeername(fd, $0, &length) : getsockname(fd, $0, &length) }
        }
        guard result == 0, address.sin_family == sa_family_t(AF_INET) else { return nil }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// `sleep 30` started with posix_spawn, which (unlike Foundation's Process) closes nothing:
    /// the child inherits every descriptor that is not close-on-exec, as a daemon would.
    static func spawnSleeper() throws -> pid_t {
        var pid: pid_t = 0
        let argv: [UnsafeMutablePointer<CChar>?] = ["/bin/sleep", "30"].map { (word: String) in strdup(word) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        let spawned = posix_spawn(&pid, "/bin/sleep", nil, nil, argv, environ)
        try #require(spawned == 0, "posix_spawn: \(spawned)")
        return pid
    }
}
