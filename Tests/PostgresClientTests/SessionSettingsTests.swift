import Testing

@testable import PostgresClient

/// Every pooled connection starts with the pool's session settings (JIT off by default: a
/// transactional service's queries never run long enough to repay PostgreSQL's compilation).
@Suite("Session settings")
struct SessionSettingsTests {
    @Test func connectionsStartWithJITOffByDefault() async throws {
        try await TestDatabase.withDatabase { url in
            let pool = PostgresPool(configuration: PostgresPoolConfiguration(conninfo: url, maxConnections: 2))
            defer { pool.close() }
            // Two connections at once, so the second is opened too (not the first one reused).
            try await pool.withConnection { first in
                try await pool.withConnection { second in
                    for session in [first, second] {
                        let jit = try await session.query("SHOW jit")[0].decode(String.self, at: 0)
                        let idleTimeout = try await session.query("SHOW idle_in_transaction_session_timeout")[0].decode(String.self, at: 0)
                        #expect(jit == "off")
                        #expect(idleTimeout == "1min")
                    }
                }
            }
        }
    }

    @Test func settingsAreTheConfiguredOnes() async throws {
        try await TestDatabase.withDatabase { url in
            var configuration = PostgresPoolConfiguration(conninfo: url, maxConnections: 1)
            configuration.sessionSettings = [PostgresSetting("work_mem", "8192"), PostgresSetting("application_name", "orch_test")]
            configuration.idleInTransactionTimeout = nil
            let pool = PostgresPool(configuration: configuration)
            defer { pool.close() }
            try await pool.withConnection { session in
                let workMem = try await session.query("SHOW work_mem")[0].decode(String.self, at: 0)
                let applicationName = try await session.query("SHOW application_name")[0].decode(String.self, at: 0)
                let jit = try await session.query("SHOW jit")[0].decode(String.self, at: 0)
                #expect(workMem == "8MB")
                #expect(applicationName == "orch_test")
                #expect(jit == "on")  // without a setting for it, the server's default stands
            }
        }
    }
}
