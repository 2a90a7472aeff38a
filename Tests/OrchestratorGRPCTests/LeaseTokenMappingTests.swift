import OrchestratorAPI
import Testing

@testable import OrchestratorGRPC

/// Task ids reach the lease table in the form the server hands them out (a lowercase UUID), so
/// an id written in capitals is the same lease there as in the database.
@Suite("Lease token mapping")
struct LeaseTokenMappingTests {
    @Test(arguments: [
        ("3F2504E0-4F89-41D3-9A0C-0305E82C3301", "3f2504e0-4f89-41d3-9a0c-0305e82c3301"),
        ("3f2504e0-4F89-41d3-9a0c-0305e82c3301", "3f2504e0-4f89-41d3-9a0c-0305e82c3301"),
        ("3f2504e0-4f89-41d3-9a0c-0305e82c3301", "3f2504e0-4f89-41d3-9a0c-0305e82c3301"),
        // Not UUIDs as the server writes them: kept as sent, for the store to refuse.
        ("{3F2504E0-4F89-41D3-9A0C-0305E82C3301}", "{3F2504E0-4F89-41D3-9A0C-0305E82C3301}"),
        ("3F2504E04F8941D39A0C0305E82C3301", "3F2504E04F8941D39A0C0305E82C3301"),
        ("NOPE", "NOPE"),
    ])
    func taskIDsAreCanonical(sent: String, used: String) {
        let lease = Orchestrator_V1_LeaseToken(taskID: sent, fencingToken: 3).domainLease
        #expect(lease.taskID == used)
        #expect(lease.fencingToken == 3)
    }
}
