import Logging
import NGRPC
import OrchestratorApp
import OrchestratorGRPC

#if canImport(Glibc)
    import Glibc
#endif

/// TLS and limits in the composition root: what `ServerRunner.run` applies to the server
/// configuration, the interceptors that go last (after authentication), and the SIGHUP reload.
extension ServerRunner {
    /// Transport limits of the settings.
    func applyLimits(to configuration: inout ServerConfiguration) {
        configuration.maxHeaderListSize = settings.limits.maxMetadataSize
        configuration.maxConnectionsPerClient = settings.limits.maxConnectionsPerClient
        configuration.maxConnections = settings.maxConnections
        configuration.maxConnectionReceiveBuffer = settings.limits.maxConnectionReceiveBuffer
        configuration.maxServerReceiveBuffer = settings.limits.maxServerReceiveBuffer
    }

    /// Rate limiting and string lengths; appended after authentication so the rate limit keys on
    /// the authenticated caller.
    func limitInterceptors() -> [any ServerInterceptor] {
        var interceptors: [any ServerInterceptor] = []
        if let (rate, burst) = settings.limits.rateLimit {
            interceptors.append(RateLimitInterceptor(
                buckets: TokenBucketTable(rate: rate, burst: burst), applies: Self.isRateLimited, key: Self.rateLimitKey))
        }
        let limits = settings.limits
        interceptors.append(StringLengthInterceptor(
            maxBytes: limits.maxStringLength, maxEntries: Self.wireEntryLimit(limits.validation.maxTasks),
            maxEdgeEntries: Self.wireEntryLimit(limits.validation.maxEdges)))
        return interceptors
    }

    /// The bound on a repeated field's entries on the wire: the DAG limit, but never below
    /// 100,000 — it also bounds heartbeat and resume lease lists, which a small `max-dag-tasks`
    /// must not cut (the DAG's own limit is then enforced by validation, after a bounded decode).
    static func wireEntryLimit(_ dagLimit: Int) -> Int { max(dagLimit, 100_000) }

    /// Health checks (load balancers, orchestrators poll them) and reflection are not rate limited.
    @Sendable static func isRateLimited(_ method: MethodDescriptor) -> Bool {
        !method.service.hasPrefix("grpc.")
    }

    /// The authenticated identity when authentication put one in the context — every tenant its
    /// token serves and its subject, escaped as executor ids spell them — else the IP address.
    /// "tenant/subject" made tenant "a/b" with subject "c" and tenant "a" with subject "b/c" one
    /// bucket, and a token serving several tenants shared its first tenant's bucket with that
    /// tenant's tokens of the same subject (found by black-box testing).
    @Sendable static func rateLimitKey(_ context: ServerContext) -> String {
        if CallerIdentity.isAuthenticated(context) {
            return "actor:" + CallerIdentity.executorID("-", context: context)
        }
        return "ip:\(context.peerAddress)"
    }

    /// The TLS listener's client-certificate settings.
    func clientCertificates(_ tls: ServerConfiguration.TLS) -> ServerConfiguration.TLS {
        var tls = tls
        tls.clientCAPath = settings.limits.tlsClientCAFile
        tls.clientAuthentication = settings.limits.tlsClientAuthentication
        return tls
    }

    /// SIGHUP re-reads the TLS certificate, key and client CA for new connections; a file that
    /// fails to load is logged and the previous certificates stay in use. Installed without a TLS
    /// listener too, so that SIGHUP (the usual "reload" signal of daemons) never kills the server.
    /// SIGUSR1 and SIGUSR2 (sent by log rotation and other tooling that assumes a daemon reopens
    /// logs or dumps state) killed the server at once, without draining (found by black-box
    /// testing). They do nothing here but leave a line; `Orchestratord` ignores them until then.
    func logUserSignals(_ server: GRPCServer) async {
        let logger = self.logger
        await server.onSignals([SIGUSR1, SIGUSR2]) { signal in
            logger.notice(
                "signal received; it does nothing here (SIGTERM or SIGINT stop the server, SIGHUP reloads TLS certificates)",
                metadata: ["signal": "\(signal == SIGUSR1 ? "SIGUSR1" : "SIGUSR2")"])
        }
    }

    func installTLSReload(_ server: GRPCServer) async {
        let logger = self.logger
        let hasTLS = settings.grpcTLSAddress != nil
        await server.onHangup {
            guard hasTLS else {
                logger.notice("SIGHUP received; no TLS listener, nothing to reload")
                return
            }
            do {
                let count = try server.reloadTLS()
                logger.notice("TLS certificates reloaded", metadata: ["listeners": "\(count)"])
            } catch {
                logger.error("TLS reload failed; keeping the previous certificates", metadata: ["error": "\(error)"])
            }
        }
    }
}
