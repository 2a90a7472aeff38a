import Synchronization

/// Counts observations (durations, sizes) into cumulative buckets, with their sum and count, as
/// Prometheus histograms do.
///
/// Thread-safety: one small mutex per histogram child guards its counts; an observation is a
/// binary search over the fixed bounds plus a few increments under that lock, with no allocation.
public final class Histogram: Sendable {
    /// Upper bounds of the finite buckets, ascending; `+Inf` is implicit.
    public let bounds: [Double]

    struct State {
        /// Non-cumulative counts per bucket; the last entry is the `+Inf` bucket.
        var counts: [UInt64]
        var sum: Double = 0
        var count: UInt64 = 0
    }

    private let state: Mutex<State>

    init(bounds: [Double]) {
        self.bounds = bounds
        state = Mutex(State(counts: Array(repeating: 0, count: bounds.count + 1)))
    }

    /// Records one observation.
    public func observe(_ value: Double) {
        // First bucket whose bound is >= value (Prometheus buckets are `le`, inclusive).
        var low = 0
        var high = bounds.count
        while low < high {
            let middle = (low + high) / 2
            if bounds[middle] < value { low = middle + 1 } else { high = middle }
        }
        state.withLock { state in
            state.counts[low] &+= 1
            state.sum += value
            state.count &+= 1
        }
    }

    /// Records a duration in seconds.
    public func observe(_ duration: Duration) {
        let parts = duration.components
        observe(Double(parts.seconds) + Double(parts.attoseconds) / 1e18)
    }

    /// Times `body` and records how long it took in seconds.
    public func time<T>(_ body: () async throws -> T) async rethrows -> T {
        let start = ContinuousClock.now
        defer { observe(ContinuousClock.now - start) }
        return try await body()
    }

    /// Cumulative bucket counts (one per bound, then `+Inf`), sum and count, read consistently.
    public var snapshot: (cumulative: [UInt64], sum: Double, count: UInt64) {
        let state = state.withLock { $0 }
        var running: UInt64 = 0
        let cumulative = state.counts.map { count -> UInt64 in
            running &+= count
            return running
        }
        return (cumulative, state.sum, state.count)
    }

    /// Bucket bounds for request latencies in seconds: 0.5 ms to 10 s.
    public static let latencyBounds: [Double] = [
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
    ]

    /// Bucket bounds for work that waits on people or executors, in seconds: 10 ms to 1 hour.
    public static let waitBounds: [Double] = [
        0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600,
    ]

    /// `count` bounds starting at `start`, each `factor` times the previous one.
    public static func exponentialBounds(start: Double, factor: Double, count: Int) -> [Double] {
        var bounds: [Double] = []
        var bound = start
        for _ in 0..<count {
            bounds.append(bound)
            bound *= factor
        }
        return bounds
    }
}
