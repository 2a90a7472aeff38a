import Testing

@testable import PostgresClient

@Suite("Connection strings in messages")
struct ConninfoRedactionTests {
    @Test("passwords are masked in every form of connection string", arguments: [
        ("postgresql://app:S3cret@db:5432/orch", "postgresql://app:****@db:5432/orch"),
        ("postgresql://app:p@ss/w:rd@db/orch?sslmode=require", "postgresql://app:****@db/orch?sslmode=require"),
        ("postgresql://app@db/orch?password=S3cret&sslmode=disable", "postgresql://app@db/orch?password=****&sslmode=disable"),
        ("postgresql://postgres:S3cretPw!xyz@[::1/orch", "postgresql://postgres:****@[::1/orch"),
        ("postgres://db/orch", "postgres://db/orch"),
        ("host=db password=S3cret dbname=orch", "host=db password=**** dbname=orch"),
        ("host=db password = 'S3 c\\'ret' dbname=orch", "host=db password = **** dbname=orch"),
        ("password=S3cret", "password=****"),
        ("host=db user=password_admin dbname=orch", "host=db user=password_admin dbname=orch"),
    ])
    func masked(conninfo: String, expected: String) {
        #expect(ConninfoRedaction.masked(conninfo) == expected)
    }

    @Test("a string libpq cannot parse is refused as invalid, its message without the password")
    func unparsableStringIsInvalidAndRedacted() async throws {
        let conninfo = "postgresql://postgres:S3cretPw!xyz@[::1/orch"
        let error = #expect(throws: PostgresError.self) { try PostgresConnection(conninfo: conninfo) }
        #expect(error?.code == .invalidArgument)
        #expect(error?.message.contains("IPv6") == true, "\(error?.message ?? "")")
        #expect(error?.message.contains("S3cretPw") == false, "\(error?.message ?? "")")
    }
}
