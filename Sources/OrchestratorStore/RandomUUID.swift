import Foundation

/// Random (version 4) task ids from the system's generator (`getrandom`), as unpredictable as
/// Foundation's: a lease names its task by id and its fencing tokens count from 1, so the id is
/// what an outsider cannot guess. Foundation's `UUID()` opened, read and closed /dev/urandom for
/// each one: 3.4 µs against 0.8 µs here, and about 6 % of the server's CPU while storing 50-task
/// workflows (`perf`, docs/BENCHMARKS.md).
enum RandomUUID {
    static func make() -> UUID {
        var generator = SystemRandomNumberGenerator()
        var halves: (UInt64, UInt64) = (generator.next(), generator.next())
        return withUnsafeMutableBytes(of: &halves) { bytes in
            bytes[6] = (bytes[6] & 0x0F) | 0x40  // version 4
            bytes[8] = (bytes[8] & 0x3F) | 0x80  // RFC 4122 variant
            return UUID(uuid: (
                bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7],
                bytes[8], bytes[9], bytes[10], bytes[11], bytes[12], bytes[13], bytes[14], bytes[15]))
        }
    }
}
