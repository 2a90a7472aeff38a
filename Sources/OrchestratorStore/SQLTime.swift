import Foundation
import OrchestratorApp

/// `UnixMillis` ↔ `timestamptz`. Instants travel as `Date` (binary timestamptz, microseconds), so
/// milliseconds round-trip exactly.
extension Int64 {
    var sqlTimestamp: Date { Date(timeIntervalSince1970: Double(self) / 1000) }
}

extension Date {
    var unixMillis: UnixMillis { UnixMillis((timeIntervalSince1970 * 1000).rounded()) }
}

extension Optional where Wrapped == Date {
    var unixMillis: UnixMillis? { self.map(\.unixMillis) }
}
