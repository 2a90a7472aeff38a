import ArgumentParser
import Foundation
import NGRPC
import OrchestratorAPI

/// A connected client, built from `ConnectionOptions`.
struct Connection {
    let channel: GRPCChannel
    let options: ConnectionOptions

    init(_ options: ConnectionOptions) throws {
        self.options = options
        let (host, port) = try Self.split(options.address)
        var tls: ClientConfiguration.TLS?
        if (options.certFile == nil) != (options.keyFile == nil) {
            throw ValidationError("--tls-cert-file and --tls-key-file go together")
        }
        if options.tls || options.caFile != nil || options.certFile != nil {
            tls = ClientConfiguration.TLS(
                caFile: options.caFile, verifyCertificate: !options.insecureSkipVerify, serverName: host,
                certificateChainPath: options.certFile, privateKeyPath: options.keyFile)
        }
        channel = try GRPCChannel(host: host, port: port, tls: tls)
    }

    var workflows: Orchestrator_V1_WorkflowsClient { Orchestrator_V1_WorkflowsClient(channel: channel) }
    var executors: Orchestrator_V1_ExecutorsClient { Orchestrator_V1_ExecutorsClient(channel: channel) }

    /// Call options with the deadline, the token and a fresh W3C trace.
    func callOptions(timeout: Double? = nil, traceparent: String? = nil) -> CallOptions {
        var metadata = Metadata()
        if let token = options.token { metadata.add("authorization", "Bearer \(token)") }
        metadata.add("traceparent", traceparent ?? TraceContext.start().traceparent)
        let seconds = timeout ?? options.timeout ?? ConnectionOptions.defaultTimeout
        // Larger answers than a generated client's default 4 MiB: a workflow's tasks carry their
        // results, and `orchctl get` is how an operator reads one whose results add up past 4 MiB
        // (EXECUTORS.md's assignment_too_large example: two 3 MB results). Found by black-box testing.
        return CallOptions(
            timeout: seconds > 0 ? .milliseconds(Int64(seconds * 1000)) : nil, metadata: metadata,
            maxReceiveMessageSize: Self.maxReceiveMessageSize)
    }

    /// Largest answer orchctl accepts (256 MiB).
    static let maxReceiveMessageSize = 256 * 1024 * 1024

    func close() async { await channel.close() }

    static func split(_ address: String) throws -> (String, Int) {
        guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]), (1...65535).contains(port)
        else {
            throw ValidationError("address \"\(address)\" is not host:port (port 1-65535)")
        }
        var host = String(address[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return (host, port)
    }
}

/// A failure to show the user as one line, with a non-zero exit.
struct CLIError: Error, CustomStringConvertible {
    let description: String
    /// The gRPC status code when the failure was the server's answer.
    let code: RPCStatus.Code?
    init(_ description: String, code: RPCStatus.Code? = nil) {
        self.description = description
        self.code = code
    }
}

/// Runs `body`, turning gRPC failures into readable errors (`NOT_FOUND: workflow … not found`).
func withConnection<T>(_ options: ConnectionOptions, _ body: (Connection) async throws -> T) async throws -> T {
    let connection = try Connection(options)
    do {
        let value = try await body(connection)
        await connection.close()
        return value
    } catch let status as RPCStatus {
        await connection.close()
        throw CLIError("\(status.code.name): \(status.message)", code: status.code)
    } catch {
        await connection.close()
        throw error
    }
}
