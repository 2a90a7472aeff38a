import Logging
import NGRPC
import OrchestratorAPI
import OrchestratorApp
import Testing

@testable import OrchestratorGRPC

/// The edge binds every call's audit cause from the caller and the call's trace, and nothing leaks
/// past the call.
@Suite struct AuditCauseBindingTests {
    static func context(actor: Actor?) -> ServerContext {
        let context = ServerContext(
            method: Orchestrator_V1_WorkflowsMethods.cancelWorkflow, requestMetadata: Metadata(), deadline: nil,
            trace: TraceContext.start(), peer: "test")
        if let actor { context.setValue(actor, forKey: CallerIdentity.key) }
        return context
    }

    @Test("a call's body sees the authenticated caller and the call's trace id")
    func authenticated() async throws {
        let alice = Actor(subject: "alice", role: "submitter", tenant: "t1")
        let context = Self.context(actor: alice)
        let seen = try await mappingErrors(context, logger: Logger(label: "test")) { AuditCause.current }
        #expect(seen == AuditCause(actor: alice, traceID: context.trace.traceID))
        #expect(AuditCause.current == nil)
    }

    @Test("without authentication the development identity is the cause")
    func anonymous() async throws {
        let context = Self.context(actor: nil)
        let seen = try await auditing(context) { AuditCause.current }
        #expect(seen?.actor == .anonymous)
        #expect(seen?.traceID == context.trace.traceID)
    }

    @Test("child tasks and unstructured tasks of the call inherit the cause (a lease stream's inbound loop is one)")
    func inherited() async throws {
        let bob = Actor(subject: "bob", role: "executor", tenant: "t2")
        let context = Self.context(actor: bob)
        let (child, unstructured) = try await auditing(context) {
            async let child = AuditCause.current
            let unstructured = Task { AuditCause.current }
            return (await child, await unstructured.value)
        }
        #expect(child?.actor == bob && unstructured?.actor == bob)
    }
}
