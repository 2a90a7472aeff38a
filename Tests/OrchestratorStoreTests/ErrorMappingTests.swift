import Foundation
import OrchestratorApp
import OrchestratorStore
import PostgresClient
import Testing

@Suite("Store error mapping")
struct ErrorMappingTests {
    @Test("an unreachable database is StoreError.unavailable, for reads and writes")
    func unreachable() async throws {
        let pool = PostgresPool(
            configuration: PostgresPoolConfiguration(
                conninfo: "postgresql://postgres@127.0.0.1:\(TestDatabase.freePort())/none?connect_timeout=1", maxConnections: 1,
                connectTimeout: .milliseconds(200)))
        defer { pool.close() }
        let workflows = PostgresWorkflowStore(pool: pool)
        let dispatch = PostgresDispatchStore(pool: pool)
        await #expect {
            _ = try await workflows.workflow(id: "wf_x", tenant: nil)
        } throws: { error in
            if case StoreError.unavailable = error { return true }
            return false
        }
        await #expect {
            _ = try await dispatch.claimTasks(
                ClaimRequest(executorID: "e", capabilities: [], tenants: nil, limit: 1, leaseTTLMillis: 1000, now: 0))
        } throws: { error in
            if case StoreError.unavailable = error { return true }
            return false
        }
    }
}
