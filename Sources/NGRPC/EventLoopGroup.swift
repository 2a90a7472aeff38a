import Synchronization
internal import CNGRPCShims

/// A fixed set of event loops handing out loops round-robin, one per new connection.
///
/// Thread-safe: the loops are immutable after `init`; the round-robin cursor is atomic.
public final class EventLoopGroup: Sendable {
    let loops: [EventLoop]
    private let cursor = Atomic<Int>(0)

    /// Starts `threads` loop threads (at least one).
    public init(threads: Int) {
        loops = (0..<max(1, threads)).map { EventLoop(index: $0) }
    }

    func next() -> EventLoop {
        let value = cursor.wrappingAdd(1, ordering: .relaxed).oldValue
        return loops[value % loops.count]
    }

    /// Stops and joins every loop thread. Call once, from outside the loops.
    public func shutdown() {
        for loop in loops { loop.stop() }
    }

    /// Number of processor cores, the default thread count.
    public static var coreCount: Int {
        let count = sysconf(Int32(_SC_NPROCESSORS_ONLN))
        return count > 0 ? count : 1
    }
}

