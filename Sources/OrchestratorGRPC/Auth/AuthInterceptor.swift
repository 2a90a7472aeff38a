public import Logging
public import NGRPC
import OrchestratorApp
public import OrchestratorAuth

/// Authenticates every call with a bearer JWT and authorizes it by role.
///
/// Reads `authorization: Bearer <token>`, verifies it (`TokenVerifier`), checks the method against
/// `MethodAccess`, and stores the caller for the handlers (`CallerIdentity`). Answers
/// UNAUTHENTICATED when the token is missing or invalid and PERMISSION_DENIED when a valid identity
/// lacks the role; never PERMISSION_DENIED for an unidentified caller.
public struct AuthInterceptor: ServerInterceptor {
    let verifier: TokenVerifier
    let access: MethodAccess
    let logger: Logger

    public init(verifier: TokenVerifier, access: MethodAccess = MethodAccess(), logger: Logger = Logger(label: "orchestrator.auth")) {
        self.verifier = verifier
        self.access = access
        self.logger = logger
    }

    public func intercept(source: any RawMessageSource, sink: any RawMessageSink, context: ServerContext, next: RawHandler) async throws {
        let rule = access.rule(for: context.method)
        if rule == .open {
            try await next(source, sink, context)
            return
        }
        let identity = try authenticate(context)
        if case .roles(let allowed) = rule, !allowed.contains(identity.role) {
            logger.info(
                "permission denied",
                metadata: [
                    "method": "\(context.method.path)", "subject": "\(identity.subject)", "role": "\(identity.role.rawValue)",
                    "trace_id": "\(context.trace.traceID)",
                ])
            throw RPCStatus(
                .permissionDenied,
                "role \(identity.role.rawValue) may not call \(context.method.path) (allowed: \(allowed.map(\.rawValue).sorted().joined(separator: ", ")))"
            )
        }
        context.setValue(
            Actor(subject: identity.subject, role: identity.role.rawValue, tenant: identity.tenant), forKey: CallerIdentity.key)
        context.setValue(identity.grant, forKey: CallerIdentity.grantKey)
        context.setValue(identity.expiresAt + verifier.policy.clockSkew, forKey: CallerIdentity.validUntilKey)
        try await next(source, sink, context)
    }

    /// The verified identity of the call, or UNAUTHENTICATED saying what is wrong.
    func authenticate(_ context: ServerContext) throws(RPCStatus) -> VerifiedIdentity {
        let values = context.requestMetadata.values("authorization")
        guard !values.isEmpty else {
            throw unauthenticated(context, "missing bearer token: send `authorization: Bearer <JWT>` metadata")
        }
        guard values.count == 1, case .string(let header) = values[0] else {
            throw unauthenticated(context, "send exactly one `authorization` metadata value")
        }
        let scheme = "bearer "
        guard header.count > scheme.count, header.prefix(scheme.count).lowercased() == scheme else {
            throw unauthenticated(context, "`authorization` must be `Bearer <JWT>`")
        }
        let token = String(header.dropFirst(scheme.count)).trimmingSpaces
        do {
            return try verifier.verify(token)
        } catch {
            throw unauthenticated(context, "invalid token: \(error.message)", reason: error.code.rawValue)
        }
    }

    func unauthenticated(_ context: ServerContext, _ message: String, reason: String = "missing") -> RPCStatus {
        logger.info(
            "unauthenticated call refused",
            metadata: [
                "method": "\(context.method.path)", "peer": "\(context.peer)", "reason": "\(reason)",
                "trace_id": "\(context.trace.traceID)",
            ])
        return RPCStatus(.unauthenticated, message)
    }
}

extension String {
    fileprivate var trimmingSpaces: String {
        var text = Substring(self)
        while text.first == " " { text = text.dropFirst() }
        while text.last == " " { text = text.dropLast() }
        return String(text)
    }
}
