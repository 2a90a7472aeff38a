internal import CLibevent
internal import CNGRPCShims

/// An OpenSSL `SSL_CTX` configured for HTTP/2: TLS 1.2+, ALPN `h2` only.
///
/// Threading: configured once in `init`, then only `makeSSL()` is called (OpenSSL contexts are
/// safe to share across threads once set up). Ownership: owns the `SSL_CTX` and frees it in
/// `deinit`; each `SSL` from `makeSSL()` is handed to a bufferevent created with
/// `BEV_OPT_CLOSE_ON_FREE`, which frees it.
final class TLSContext: @unchecked Sendable {
    let context: OpaquePointer

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// A server context with the given certificate chain and key.
    init(server tls: ServerConfiguration.TLS) throws(Failure) {
        guard let context = SSL_CTX_new(TLS_server_method()) else { throw Failure(description: "SSL_CTX_new failed") }
        self.context = context
        _ = cngrpc_ssl_ctx_set_min_tls12(UnsafeMutableRawPointer(context))
        cngrpc_ssl_ctx_set_release_buffers(UnsafeMutableRawPointer(context))
        guard SSL_CTX_use_certificate_chain_file(context, tls.certificateChainPath) == 1 else {
            throw Failure(description: "cannot load certificate chain \(tls.certificateChainPath): \(Self.lastError())")
        }
        guard SSL_CTX_use_PrivateKey_file(context, tls.privateKeyPath, SSL_FILETYPE_PEM) == 1 else {
            throw Failure(description: "cannot load private key \(tls.privateKeyPath): \(Self.lastError())")
        }
        guard SSL_CTX_check_private_key(context) == 1 else {
            throw Failure(description: "private key does not match the certificate: \(Self.lastError())")
        }
        if tls.clientAuthentication != .none {
            guard let caPath = tls.clientCAPath else {
                throw Failure(description: "client certificate verification (\(tls.clientAuthentication.rawValue)) needs a client CA file")
            }
            guard cngrpc_ssl_ctx_load_client_ca(UnsafeMutableRawPointer(context), caPath) == 1 else {
                throw Failure(description: "cannot load client CA file \(caPath): \(Self.lastError())")
            }
            let mode = tls.clientAuthentication == .require ? SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT : SSL_VERIFY_PEER
            SSL_CTX_set_verify(context, mode, nil)
            // Session resumption with client verification needs a context id, or OpenSSL refuses
            // resumed handshakes ("session id context uninitialized").
            let id = Array("ngrpc-mtls".utf8)
            _ = id.withUnsafeBufferPointer { SSL_CTX_set_session_id_context(context, $0.baseAddress, UInt32($0.count)) }
        }
        SSL_CTX_set_alpn_select_cb(context, tlsSelectH2, nil)
    }

    /// A client context: verifies the server against `caFile` (or the system store) unless
    /// `verify` is false (tests only), and presents `certificate` (chain and key PEM files) to
    /// servers that ask for one (mutual TLS).
    init(clientCAFile caFile: String?, verify: Bool, certificate: (chain: String, key: String)? = nil) throws(Failure) {
        guard let context = SSL_CTX_new(TLS_client_method()) else { throw Failure(description: "SSL_CTX_new failed") }
        self.context = context
        _ = cngrpc_ssl_ctx_set_min_tls12(UnsafeMutableRawPointer(context))
        if let certificate {
            guard SSL_CTX_use_certificate_chain_file(context, certificate.chain) == 1 else {
                throw Failure(description: "cannot load client certificate chain \(certificate.chain): \(Self.lastError())")
            }
            guard SSL_CTX_use_PrivateKey_file(context, certificate.key, SSL_FILETYPE_PEM) == 1 else {
                throw Failure(description: "cannot load client private key \(certificate.key): \(Self.lastError())")
            }
            guard SSL_CTX_check_private_key(context) == 1 else {
                throw Failure(description: "client private key does not match the certificate: \(Self.lastError())")
            }
        }
        if verify {
            if let caFile {
                guard SSL_CTX_load_verify_locations(context, caFile, nil) == 1 else {
                    throw Failure(description: "cannot load CA file \(caFile): \(Self.lastError())")
                }
            } else {
                SSL_CTX_set_default_verify_paths(context)
            }
            SSL_CTX_set_verify(context, SSL_VERIFY_PEER, nil)
        } else {
            SSL_CTX_set_verify(context, SSL_VERIFY_NONE, nil)
        }
        let protocols: [UInt8] = [2, UInt8(ascii: "h"), UInt8(ascii: "2")]
        _ = protocols.withUnsafeBufferPointer { SSL_CTX_set_alpn_protos(context, $0.baseAddress, UInt32($0.count)) }
    }

    deinit {
        SSL_CTX_free(context)
    }

    /// A new `SSL` for one connection; the caller hands it to a bufferevent that frees it.
    func makeSSL() -> OpaquePointer? {
        SSL_new(context)
    }

    /// True when ALPN on `ssl` settled on `h2`.
    static func negotiatedH2(_ ssl: OpaquePointer) -> Bool {
        var data: UnsafePointer<UInt8>?
        var length: UInt32 = 0
        SSL_get0_alpn_selected(ssl, &data, &length)
        guard let data, length == 2 else { return false }
        return data[0] == UInt8(ascii: "h") && data[1] == UInt8(ascii: "2")
    }

    static func lastError() -> String {
        let code = ERR_get_error()
        guard code != 0 else { return "unknown error" }
        var buffer = [CChar](repeating: 0, count: 256)
        ERR_error_string_n(code, &buffer, buffer.count)
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// ALPN: pick `h2` from the client's list or refuse the handshake (gRPC needs HTTP/2).
private func tlsSelectH2(
    _ ssl: OpaquePointer?, _ out: UnsafeMutablePointer<UnsafePointer<UInt8>?>?, _ outLength: UnsafeMutablePointer<UInt8>?,
    _ input: UnsafePointer<UInt8>?, _ inputLength: UInt32, _ argument: UnsafeMutableRawPointer?
) -> Int32 {
    guard let input, let out, let outLength else { return SSL_TLSEXT_ERR_ALERT_FATAL }
    var index = 0
    let total = Int(inputLength)
    while index < total {
        let length = Int(input[index])
        if length == 2, index + 2 < total, input[index + 1] == UInt8(ascii: "h"), input[index + 2] == UInt8(ascii: "2") {
            out.pointee = input + index + 1
            outLength.pointee = 2
            return SSL_TLSEXT_ERR_OK
        }
        index += 1 + length
    }
    return SSL_TLSEXT_ERR_ALERT_FATAL
}
