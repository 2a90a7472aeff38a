import Foundation
import Testing

@testable import NGRPC

/// Mutual TLS between GRPCServer and GRPCChannel, with a CA, server and client certificates made
/// by the openssl CLI; plus `reloadTLS()` all-or-nothing behaviour.
@Suite struct MutualTLSLoopbackTests {
    struct PKI {
        let directory: String
        var ca: String { directory + "/ca.pem" }
        var serverCertificate: String { directory + "/server.pem" }
        var serverKey: String { directory + "/server.key" }
        var clientCertificate: String { directory + "/client.pem" }
        var clientKey: String { directory + "/client.key" }
    }

    static func openssl(_ arguments: [String], in directory: String) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        process.standardError = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        try #require(process.terminationStatus == 0, "openssl \(arguments.joined(separator: " "))")
    }

    static func makePKI() throws -> PKI {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ngrpc-mtls-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        try openssl(["req", "-x509"] + ec + ["-keyout", "ca.key", "-out", "ca.pem", "-days", "1", "-subj", "/CN=Test CA",
                     "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign"], in: directory)
        for (name, subject, san, serial) in [
            ("server", "/CN=localhost", "DNS:localhost,IP:127.0.0.1", "16"),
            ("client", "/O=Acme\\, Inc./CN=swift-client", "DNS:swift-client.example,IP:10.0.0.7", "255"),
        ] {
            try openssl(["req", "-new"] + ec + ["-keyout", "\(name).key", "-out", "\(name).csr", "-subj", subject], in: directory)
            try "subjectAltName=\(san)\n".write(toFile: directory + "/\(name).ext", atomically: true, encoding: .utf8)
            try openssl(["x509", "-req", "-in", "\(name).csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-set_serial", serial,
                         "-days", "1", "-extfile", "\(name).ext", "-out", "\(name).pem"], in: directory)
        }
        return PKI(directory: directory)
    }

    static func start(_ pki: PKI, mode: ServerConfiguration.TLS.ClientAuthentication, presentCertificate: Bool) async throws -> Loopback {
        try await Loopback.start(
            tls: (
                ServerConfiguration.TLS(
                    certificateChainPath: pki.serverCertificate, privateKeyPath: pki.serverKey, clientCAPath: pki.ca,
                    clientAuthentication: mode),
                ClientConfiguration.TLS(
                    caFile: pki.ca, certificateChainPath: presentCertificate ? pki.clientCertificate : nil,
                    privateKeyPath: presentCertificate ? pki.clientKey : nil)
            )
        ) { router in
            router.registerUnary(Echo.get) { (_: RawMessage, context) -> RawMessage in
                guard let peer = context.peerCertificate else { return RawMessage("none") }
                return RawMessage([peer.subject, peer.commonName ?? "-", peer.subjectAlternativeNames.joined(separator: ","),
                                   peer.serialNumber].joined(separator: "|"))
            }
        }
    }

    @Test func requiredClientCertificateReachesTheHandler() async throws {
        let pki = try Self.makePKI()
        let loopback = try await Self.start(pki, mode: .require, presentCertificate: true)
        let response: RawMessage = try await loopback.channel.unary(Echo.get, request: RawMessage(""))
        #expect(response.text == "CN=swift-client,O=Acme\\, Inc.|swift-client|DNS:swift-client.example,IP:10.0.0.7|FF")
        await loopback.stop()
    }

    @Test func requireRefusesAClientWithoutCertificate() async throws {
        let pki = try Self.makePKI()
        let loopback = try await Self.start(pki, mode: .require, presentCertificate: false)
        await expectStatus(.unavailable) {
            let _: RawMessage = try await loopback.channel.unary(Echo.get, request: RawMessage(""))
        }
        await loopback.stop()
    }

    @Test func optionalServesAClientWithoutCertificate() async throws {
        let pki = try Self.makePKI()
        let loopback = try await Self.start(pki, mode: .optional, presentCertificate: false)
        let response: RawMessage = try await loopback.channel.unary(Echo.get, request: RawMessage(""))
        #expect(response.text == "none")
        await loopback.stop()
    }

    @Test func reloadIsAllOrNothing() async throws {
        let pki = try Self.makePKI()
        let loopback = try await Self.start(pki, mode: .require, presentCertificate: true)
        #expect(try loopback.server.reloadTLS() == 1)
        // A broken key: the reload fails naming the listener, and the old context keeps serving.
        let original = try String(contentsOfFile: pki.serverKey, encoding: .utf8)
        try "not a key\n".write(toFile: pki.serverKey, atomically: true, encoding: .utf8)
        #expect(throws: GRPCServer.TLSReloadError.self) { try loopback.server.reloadTLS() }
        try original.write(toFile: pki.serverKey, atomically: true, encoding: .utf8)
        let fresh = try GRPCChannel(configuration: loopback.channel.configuration)
        let response: RawMessage = try await fresh.unary(Echo.get, request: RawMessage(""))
        #expect(response.text.hasPrefix("CN=swift-client"))
        await fresh.close()
        await loopback.stop()
    }

    @Test func clientCertificateNeedsChainAndKey() throws {
        var configuration = ClientConfiguration(host: "localhost", port: 1, tls: .init(certificateChainPath: "/a.pem"))
        #expect(throws: GRPCChannel.SetupError.self) { _ = try GRPCChannel(configuration: configuration) }
        configuration.tls = .init(certificateChainPath: "/nonexistent.pem", privateKeyPath: "/nonexistent.key")
        #expect(throws: GRPCChannel.SetupError.self) { _ = try GRPCChannel(configuration: configuration) }
    }

    @Test func clientVerifiesTheServerName() async throws {
        let pki = try Self.makePKI()
        let loopback = try await Self.start(pki, mode: .none, presentCertificate: false)
        let port = try #require(loopback.server.port)
        for (host, serverName, succeeds) in [
            ("127.0.0.1", nil, true), ("localhost", nil, true), ("127.0.0.1", "localhost", true),
            ("127.0.0.1", "elsewhere.example", false), ("localhost", "127.0.0.2", false),
        ] as [(String, String?, Bool)] {
            let channel = try GRPCChannel(configuration: ClientConfiguration(
                host: host, port: port, tls: .init(caFile: pki.ca, serverName: serverName)))
            if succeeds {
                let response: RawMessage = try await channel.unary(Echo.get, request: RawMessage(""))
                #expect(response.text == "none")
            } else {
                await expectStatus(.unavailable) {
                    let _: RawMessage = try await channel.unary(Echo.get, request: RawMessage(""))
                }
            }
            await channel.close()
        }
        await loopback.stop()
    }

    @Test func commonNameHonoursEscapedCommas() {
        let certificate = PeerCertificate(subject: "CN=a\\,b,O=Acme", subjectAlternativeNames: [], serialNumber: "1")
        #expect(certificate.commonName == "a,b")
        #expect(PeerCertificate(subject: "O=Acme", subjectAlternativeNames: [], serialNumber: "1").commonName == nil)
    }
}
