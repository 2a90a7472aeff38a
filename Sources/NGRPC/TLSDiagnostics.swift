internal import CLibevent
internal import CNGRPCShims

/// What went wrong with TLS, in words an operator can act on: why a connection's handshake
/// failed, and whether a server certificate is outside its validity period.
extension TLSContext {
    /// Why a TLS bufferevent failed, from what OpenSSL recorded for it: the certificate check's
    /// verdict and the errors queued on the bufferevent. nil when OpenSSL recorded nothing (the
    /// failure was the socket's own). bufferevent_openssl keeps a connection's OpenSSL errors on
    /// the bufferevent, not in the thread's error queue, which `lastError()` read: every failed
    /// handshake said "connection failed: Success" (found by black-box testing).
    static func failure(of bufferEvent: OpaquePointer) -> String? {
        var reasons: [String] = []
        if let ssl = bufferevent_openssl_get_ssl(bufferEvent) {
            let verdict = SSL_get_verify_result(ssl)
            if verdict != X509_V_OK {
                reasons.append("certificate verify failed: \(String(cString: X509_verify_cert_error_string(verdict)))")
            }
        }
        while true {
            let code = bufferevent_get_openssl_error(bufferEvent)
            guard code != 0 else { break }
            // libevent queues SSL_get_error's result there too (library 0, "reason(1)"): not an
            // OpenSSL error of its own.
            guard (code >> 23) & 0xFF != 0 else { continue }
            var buffer = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(code, &buffer, buffer.count)
            reasons.append(String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        return reasons.isEmpty ? nil : reasons.joined(separator: "; ")
    }

    /// Why the context's own certificate is outside its validity period now ("expired on …",
    /// "not valid before …"), nil when it is within it. The server still starts with it — the
    /// operator may be mid-rotation — but every client's handshake will fail, so it is logged.
    var certificateValidityProblem: String? {
        guard let certificate = SSL_CTX_get0_certificate(context) else { return nil }
        if let notAfter = X509_get0_notAfter(certificate), X509_cmp_current_time(notAfter) < 0 {
            return "the certificate expired on \(Self.text(notAfter))"
        }
        if let notBefore = X509_get0_notBefore(certificate), X509_cmp_current_time(notBefore) > 0 {
            return "the certificate is not valid before \(Self.text(notBefore))"
        }
        return nil
    }

    /// An ASN.1 time as OpenSSL prints it ("Feb  1 00:00:00 2020 GMT").
    private static func text(_ time: UnsafePointer<ASN1_TIME>) -> String {
        guard let bio = BIO_new(BIO_s_mem()) else { return "?" }
        defer { BIO_free(bio) }
        guard ASN1_TIME_print(bio, time) == 1 else { return "?" }
        var buffer = [CChar](repeating: 0, count: 64)
        let count = BIO_read(bio, &buffer, Int32(buffer.count - 1))
        return count > 0 ? String(decoding: buffer.prefix(Int(count)).map { UInt8(bitPattern: $0) }, as: UTF8.self) : "?"
    }
}
