internal import CLibPQ
import Logging

/// Server notices (`NOTICE`, `WARNING`, … sent outside any error) go to the log. libpq's default
/// receiver prints them to stderr as bare text, which broke servers whose stderr is one JSON
/// object per line (`CREATE TABLE IF NOT EXISTS` on an existing table says `NOTICE: … skipping`).
enum PostgresNotices {
    static let logger = Logger(label: "postgres.notice")

    /// Routes `handle`'s notices to `logger`. Called once per connection, on its thread.
    static func route(_ handle: OpaquePointer) {
        PQsetNoticeReceiver(handle, postgresNoticeReceiver, nil)
    }
}

/// libpq's notice receiver: runs on the connection's thread during a call; only logs.
private func postgresNoticeReceiver(_ argument: UnsafeMutableRawPointer?, _ result: OpaquePointer?) {
    guard let result else { return }
    func field(_ code: UInt8) -> String? {
        PQresultErrorField(result, Int32(code)).map { String(cString: $0) }
    }
    let severity = field(UInt8(ascii: "V")) ?? field(UInt8(ascii: "S")) ?? "NOTICE"
    // WARNING is worth an operator's eye; NOTICE, INFO, LOG and DEBUG are chatter.
    let level: Logger.Level = severity == "WARNING" ? .warning : .debug
    PostgresNotices.logger.log(level: level, "\(field(UInt8(ascii: "M")) ?? "")", metadata: [
        "severity": "\(severity)", "sqlstate": "\(field(UInt8(ascii: "C")) ?? "")",
    ])
}
