import OrchestratorApp
@testable import OrchestratorStore
import PostgresClient
import Testing

/// A COMMIT whose reply was lost (tools/chaos drops it in a proxy) used to reach callers as
/// INTERNAL; it is a transient database failure, answered UNAVAILABLE so clients retry.
@Suite("Store error mapping: lost COMMIT reply")
struct CommitOutcomeMappingTests {
    @Test("a COMMIT with an unknown outcome is StoreError.unavailable, keeping the message")
    func commitOutcomeUnknown() {
        let lost = PostgresError(
            code: .commitOutcomeUnknown,
            message: "connection lost during COMMIT; the transaction may or may not have committed: server closed the connection")
        let translated = StoreErrors.translate(lost)
        #expect(translated as? StoreError == .unavailable(lost.message))
    }
}
