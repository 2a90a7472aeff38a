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

    @Test("a statement the database cancelled (statement_timeout, pg_cancel_backend) is StoreError.unavailable")
    func queryCanceled() {
        let cancelled = PostgresError(code: .queryCanceled, message: "canceling statement due to statement timeout")
        #expect(StoreErrors.translate(cancelled) as? StoreError
            == .unavailable("the database cancelled the statement (statement_timeout or an operator's cancel)"))
    }
}
