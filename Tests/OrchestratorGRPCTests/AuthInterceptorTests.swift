import NGRPC
import OrchestratorApp
import OrchestratorAuth
import Synchronization
import Testing

@testable import OrchestratorGRPC

/// The auth interceptor on its own: which calls reach the handler, with which caller, and the
/// status of those that do not.
@Suite struct AuthInterceptorTests {
    static let secret = Array("an-hs256-secret-of-at-least-32-bytes!".utf8)

    struct NoMessages: RawMessageSource { func next() async throws -> [UInt8]? { nil } }
    struct DiscardSink: RawMessageSink {
        func sendHeaders(_ metadata: Metadata) async throws {}
        func send(_ message: [UInt8]) async throws {}
    }

    /// What the handler saw, if it ran.
    final class Seen: Sendable {
        let value = Mutex<(Actor, TenantGrant, String?)?>(nil)
    }

    static func token(_ role: Role, tenant: String?, tenants: [String] = [], lifetime: Double = 600) throws -> String {
        try TokenMinter(key: try .hmac(secret: secret)).mint(
            TokenClaims(subject: "sam", role: role, tenant: tenant, tenants: tenants, lifetime: lifetime))
    }

    /// Runs one call of `method` through the interceptor; returns what the handler saw, or the status thrown.
    static func call(_ method: MethodDescriptor, authorization: [String]) async throws -> Result<(Actor, TenantGrant, String?)?, RPCStatus>
    {
        let interceptor = AuthInterceptor(verifier: TokenVerifier(keys: try KeySet([try .hmac(secret: secret)])))
        var metadata = Metadata()
        for value in authorization { metadata.add("authorization", value) }
        let context = ServerContext(method: method, requestMetadata: metadata, deadline: nil, trace: TraceContext.start(), peer: "test")
        let seen = Seen()
        do {
            try await interceptor.intercept(source: NoMessages(), sink: DiscardSink(), context: context) { _, _, context in
                seen.value.withLock {
                    $0 = (CallerIdentity.actor(of: context), CallerIdentity.grant(of: context), CallerIdentity.tenantScope(of: context))
                }
            }
        } catch let status as RPCStatus {
            return .failure(status)
        }
        return .success(seen.value.withLock { $0 })
    }

    static let submit = MethodDescriptor(service: "orchestrator.v1.Workflows", method: "SubmitQuery", kind: .unary)
    static let get = MethodDescriptor(service: "orchestrator.v1.Workflows", method: "GetWorkflow", kind: .unary)
    static let lease = MethodDescriptor(service: "orchestrator.v1.Executors", method: "Lease", kind: .bidirectionalStreaming)
    static let health = MethodDescriptor(service: "grpc.health.v1.Health", method: "Check", kind: .unary)
    static let reflection = MethodDescriptor(
        service: "grpc.reflection.v1.ServerReflection", method: "ServerReflectionInfo", kind: .bidirectionalStreaming)
    static let other = MethodDescriptor(service: "some.Other", method: "Do", kind: .unary)

    @Test func missingTokenIsUnauthenticated() async throws {
        guard case .failure(let status) = try await Self.call(Self.get, authorization: []) else { Issue.record("handler ran"); return }
        #expect(status.code == .unauthenticated)
        #expect(status.message == "missing bearer token: send `authorization: Bearer <JWT>` metadata")
    }

    @Test(arguments: ["Basic abc", "Bearer", "Bearer ", "bearer x.y.z", "Token abc"])
    func badHeadersAreUnauthenticated(_ header: String) async throws {
        guard case .failure(let status) = try await Self.call(Self.get, authorization: [header]) else {
            Issue.record("handler ran"); return
        }
        #expect(status.code == .unauthenticated)
    }

    @Test func twoAuthorizationValuesAreRefused() async throws {
        let token = try Self.token(.admin, tenant: "*")
        guard case .failure(let status) = try await Self.call(Self.get, authorization: ["Bearer \(token)", "Bearer \(token)"]) else {
            Issue.record("handler ran")
            return
        }
        #expect(status.code == .unauthenticated)
    }

    @Test func expiredTokenIsUnauthenticatedWithTheReason() async throws {
        let token = try TokenMinter(key: try .hmac(secret: Self.secret)).mint(
            TokenClaims(subject: "sam", role: .admin, tenant: "*", issuedAt: UnixClock.now() - 7200, lifetime: 600))
        guard case .failure(let status) = try await Self.call(Self.get, authorization: ["Bearer \(token)"]) else {
            Issue.record("handler ran"); return
        }
        #expect(status.code == .unauthenticated)
        #expect(status.message.hasPrefix("invalid token: token expired at"))
    }

    @Test func wrongRoleIsPermissionDenied() async throws {
        let viewer = try Self.token(.viewer, tenant: "acme")
        guard case .failure(let status) = try await Self.call(Self.submit, authorization: ["Bearer \(viewer)"]) else {
            Issue.record("handler ran"); return
        }
        #expect(status.code == .permissionDenied)
        #expect(status.message == "role viewer may not call /orchestrator.v1.Workflows/SubmitQuery (allowed: admin, submitter)")
        let executor = try Self.token(.executor, tenant: "acme")
        guard case .failure(let denied) = try await Self.call(Self.get, authorization: ["Bearer \(executor)"]) else {
            Issue.record("handler ran"); return
        }
        #expect(denied.code == .permissionDenied)
        guard
            case .failure(let other) = try await Self.call(
                Self.other, authorization: ["Bearer \(try Self.token(.submitter, tenant: "acme"))"])
        else {
            Issue.record("handler ran")
            return
        }
        #expect(other.code == .permissionDenied)
    }

    @Test func storesTheCallerForHandlers() async throws {
        let token = try Self.token(.submitter, tenant: "acme")
        let seen = try await Self.call(Self.submit, authorization: ["Bearer \(token)"])
        guard case .success(let value?) = seen else { Issue.record("handler did not run: \(seen)"); return }
        #expect(value.0 == Actor(subject: "sam", role: "submitter", tenant: "acme"))
        #expect(value.1 == .only(["acme"]))
        #expect(value.2 == "acme")
    }

    @Test func crossTenantAdminHasNoScope() async throws {
        let seen = try await Self.call(Self.get, authorization: ["Bearer \(try Self.token(.admin, tenant: "*"))"])
        guard case .success(let value?) = seen else { Issue.record("handler did not run: \(seen)"); return }
        #expect(value.1 == .all)
        #expect(value.2 == nil)
        #expect(value.0.tenant == "default")
    }

    @Test func executorGetsItsTenantsForLeasing() async throws {
        let token = try Self.token(.executor, tenant: nil, tenants: ["a", "b"])
        let seen = try await Self.call(Self.lease, authorization: ["Bearer \(token)"])
        guard case .success(let value?) = seen else { Issue.record("handler did not run: \(seen)"); return }
        #expect(value.1 == .only(["a", "b"]))
    }

    @Test func healthIsOpenAndReflectionNeedsAnyToken() async throws {
        guard case .success(let seen) = try await Self.call(Self.health, authorization: []) else { Issue.record("health refused"); return }
        #expect(seen?.0 == .anonymous)  // no identity stored: the handler sees the development default
        guard case .failure(let status) = try await Self.call(Self.reflection, authorization: []) else {
            Issue.record("handler ran"); return
        }
        #expect(status.code == .unauthenticated)
        guard case .success = try await Self.call(Self.reflection, authorization: ["Bearer \(try Self.token(.viewer, tenant: "x"))"]) else {
            Issue.record("reflection refused a valid token")
            return
        }
    }

    @Test func roleTableCoversEveryServiceMethod() {
        let access = MethodAccess()
        let reads: Set<Role> = [.viewer, .submitter, .admin]
        let writes: Set<Role> = [.submitter, .admin]
        for method in ["GetWorkflow", "ListWorkflows", "GetDag", "WatchWorkflow", "ListEvents"] {
            #expect(
                access.rule(for: MethodDescriptor(service: MethodAccess.workflowsService, method: method, kind: .unary)) == .roles(reads))
        }
        for method in ["SubmitQuery", "SubmitStream", "PlanWorkflow", "UpdateDag", "CancelWorkflow", "SomethingNew"] {
            #expect(
                access.rule(for: MethodDescriptor(service: MethodAccess.workflowsService, method: method, kind: .unary)) == .roles(writes))
        }
        for method in ["Lease", "PollTasks", "ReportStatus", "Heartbeat"] {
            #expect(
                access.rule(for: MethodDescriptor(service: MethodAccess.executorsService, method: method, kind: .unary))
                    == .roles([.executor, .admin]))
        }
    }

    @Test func executorIDsAreBoundToTheSubject() {
        let context = ServerContext(method: Self.lease, requestMetadata: Metadata(), deadline: nil, trace: TraceContext.start(), peer: "t")
        #expect(CallerIdentity.executorID("w1", context: context) == "w1")  // development mode
        context.setValue(Actor(subject: "svc", role: "executor", tenant: "a"), forKey: CallerIdentity.key)
        #expect(CallerIdentity.executorID("w1", context: context) == "a/svc/w1")
        // Tenant and subject are percent-encoded: "a/b" + "w1" and "a" + "b/w1" stay apart.
        context.setValue(Actor(subject: "x/y%z", role: "executor", tenant: "t/1"), forKey: CallerIdentity.key)
        #expect(CallerIdentity.executorID("b/w1", context: context) == "t%2F1/x%2Fy%25z/b/w1")
    }
}
