internal import CNGRPCShims

/// The client certificate a TLS peer presented and the server verified against its client CA
/// (mutual TLS). Handlers and interceptors read it from `ServerContext.peerCertificate`, e.g. to
/// map an executor's certificate to an identity.
public struct PeerCertificate: Sendable, Hashable {
    /// The subject distinguished name in RFC 2253 form, e.g. `CN=executor-1,O=Acme`.
    public var subject: String
    /// Subject alternative names, each with its kind: `DNS:host`, `IP:10.0.0.1`, `URI:spiffe://…`, `email:a@b`.
    public var subjectAlternativeNames: [String]
    /// The serial number, upper-case hex without leading zeros.
    public var serialNumber: String

    public init(subject: String, subjectAlternativeNames: [String], serialNumber: String) {
        self.subject = subject
        self.subjectAlternativeNames = subjectAlternativeNames
        self.serialNumber = serialNumber
    }

    /// The subject's common name (`CN`), if it has one.
    public var commonName: String? {
        // RFC 2253 lists the most specific RDN first and escapes commas inside values with `\`.
        var fields: [String] = []
        var current = ""
        var escaped = false
        for character in subject {
            if escaped {
                current.append(character)
                escaped = false
            } else if character == "\\" {
                escaped = true
            } else if character == "," {
                fields.append(current)
                current = ""
            } else {
                current.append(character)
            }
        }
        fields.append(current)
        return fields.first { $0.hasPrefix("CN=") }.map { String($0.dropFirst(3)) }
    }

    /// The verified certificate of an established TLS connection; nil when the client sent none
    /// (or verification failed, which the handshake already refused).
    static func read(from ssl: OpaquePointer) -> PeerCertificate? {
        var subject = [CChar](repeating: 0, count: 1024)
        var names = [CChar](repeating: 0, count: 4096)
        var serial = [CChar](repeating: 0, count: 128)
        let found = cngrpc_ssl_peer_certificate(
            UnsafeMutableRawPointer(ssl), &subject, subject.count, &names, names.count, &serial, serial.count)
        guard found == 1 else { return nil }
        func string(_ buffer: [CChar]) -> String {
            String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
        let alternatives = string(names).split(separator: "\n").map(String.init)
        return PeerCertificate(subject: string(subject), subjectAlternativeNames: alternatives, serialNumber: string(serial))
    }
}
