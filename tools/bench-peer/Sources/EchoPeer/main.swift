// Usage: EchoPeer [--port N]   Serves Echo/Get and Workflows/PlanWorkflow.
//   (N = 0 picks a free port). Prints "listening on port N" once bound.
import GRPCCore
import GRPCNIOTransportHTTP2

#if canImport(Glibc)
    import Glibc
#endif

/// Writes one line straight to a file descriptor: unbuffered, so the bench script sees the port
/// at once, and free of the C `stdout`/`stderr` globals that Swift 6 flags as shared mutable state.
func writeLine(_ text: String, to fd: Int32) {
    let line = text + "\n"
    _ = line.utf8CString.withUnsafeBufferPointer { write(fd, $0.baseAddress, $0.count - 1) }
}

var port = 0
var arguments = CommandLine.arguments.dropFirst()
while let argument = arguments.popFirst() {
    switch argument {
    case "--port":
        guard let value = arguments.popFirst().flatMap({ Int($0) }) else {
            writeLine("EchoPeer: --port needs an integer", to: 2)
            exit(2)
        }
        port = value
    default:
        writeLine("usage: EchoPeer [--port N]", to: 2)
        exit(2)
    }
}

let server = GRPCServer(
    transport: .http2NIOPosix(
        address: .ipv4(host: "127.0.0.1", port: port),
        transportSecurity: .plaintext
    ),
    services: [EchoService(), try PlanService()]
)

try await withThrowingDiscardingTaskGroup { group in
    group.addTask { try await server.serve() }
    if let address = try await server.listeningAddress, let bound = address.ipv4 {
        writeLine("listening on port \(bound.port)", to: 1)
    }
}
