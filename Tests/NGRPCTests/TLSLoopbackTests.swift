import Foundation
import Testing

@testable import NGRPC

@Suite("Loopback over TLS (self-signed certificate made by the openssl CLI)")
struct TLSLoopbackTests {
    /// A fresh key and self-signed certificate for `localhost` in a temporary directory.
    static func makeCertificate() throws -> (certificate: String, key: String) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ngrpc-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let certificate = directory.appendingPathComponent("cert.pem").path
        let key = directory.appendingPathComponent("key.pem").path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = [
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key,
            "-out", certificate, "-days", "1", "-subj", "/CN=localhost",
            "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ]
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        try #require(process.terminationStatus == 0)
        return (certificate, key)
    }

    @Test func unaryAndStreamingOverTLS() async throws {
        let (certificate, key) = try Self.makeCertificate()
        let loopback = try await Loopback.start(
            tls: (
                ServerConfiguration.TLS(certificateChainPath: certificate, privateKeyPath: key),
                ClientConfiguration.TLS(caFile: certificate)
            )
        ) { router in
            router.registerUnary(Echo.get) { (request: RawMessage, context) -> RawMessage in
                RawMessage("\(context.isSecure):" + request.text)
            }
            router.registerServerStreaming(Echo.stream) { (request: RawMessage, writer: RPCResponseWriter<RawMessage>, _) in
                for index in 0..<1000 { try await writer.write(RawMessage("\(index)")) }
            }
        }
        #expect(loopback.server.boundAddresses.first?.isSecure == true)
        let response: RawMessage = try await loopback.channel.unary(Echo.get, request: RawMessage("hi"))
        #expect(response.text == "true:hi")
        var count = 0
        let stream: RPCResponseStream<RawMessage> = try await loopback.channel.serverStreaming(Echo.stream, request: RawMessage(""))
        for try await _ in stream { count += 1 }
        #expect(count == 1000)
        await loopback.stop()
    }

    @Test func untrustedCertificateFailsTheCall() async throws {
        let (certificate, key) = try Self.makeCertificate()
        let loopback = try await Loopback.start(
            tls: (
                ServerConfiguration.TLS(certificateChainPath: certificate, privateKeyPath: key),
                ClientConfiguration.TLS(caFile: nil, verifyCertificate: true)
            )
        ) { router in
            router.registerUnary(Echo.get) { (request: RawMessage, _) in request }
        }
        await expectStatus(.unavailable) {
            let _: RawMessage = try await loopback.channel.unary(Echo.get, request: RawMessage("x"))
        }
        await loopback.stop()
    }

    @Test func missingCertificateFailsStart() async throws {
        var configuration = ServerConfiguration(
            listeners: [.init(host: "127.0.0.1", port: 0, tls: .init(certificateChainPath: "/nonexistent.pem", privateKeyPath: "/nonexistent.key"))],
            router: RPCRouter())
        configuration.ioThreads = 1
        let server = GRPCServer(configuration: configuration)
        await #expect(throws: GRPCServer.StartError.self) { try await server.start() }
    }
}
