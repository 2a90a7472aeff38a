/// The OrchestratorApp target: submission, planning, dispatch and leases, watch fan-out.
/// Written against the storage protocols in Storage/ and injected clocks and id generators, so
/// the composition root (orchestratord) decides what runs underneath.
import Foundation

/// Wall-clock time in Unix milliseconds, injected so tests control it.
public protocol WallClock: Sendable {
    func now() -> UnixMillis
}

public struct SystemWallClock: WallClock {
    public init() {}
    public func now() -> UnixMillis { UnixMillis((Date().timeIntervalSince1970 * 1000).rounded()) }
}

/// Unique identifiers for workflows, tasks and sessions.
public protocol IdentifierGenerator: Sendable {
    func make(prefix: String) -> String
}

/// Time-ordered random ids (`wf_0194f3…`): 48 bits of milliseconds then 80 random bits, so ids
/// sort by creation time and index well.
public struct RandomIdentifierGenerator: IdentifierGenerator {
    public init() {}

    public func make(prefix: String) -> String {
        let millis = UInt64(max(0, Date().timeIntervalSince1970 * 1000))
        var text = prefix + "_"
        text += String(millis & 0xFFFF_FFFF_FFFF, radix: 16).leftPadded(to: 12)
        // 80 random bits in two draws: each draw is a getrandom(2) call (one per byte made ten).
        var generator = SystemRandomNumberGenerator()
        let (high, low): (UInt64, UInt16) = (generator.next(), generator.next())
        text += String(high, radix: 16).leftPadded(to: 16) + String(low, radix: 16).leftPadded(to: 4)
        return text
    }
}

extension String {
    func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
