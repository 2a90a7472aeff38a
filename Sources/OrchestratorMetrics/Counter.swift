/// A value that only goes up (requests served, tasks leased). Thread-safe and lock-free.
///
/// Obtain one from a `CounterFamily` (`family.labels(...)`) once and keep it: incrementing a kept
/// handle is one atomic operation, while `labels(...)` looks the child up under a lock.
public final class Counter: Sendable {
    private let value = AtomicDouble()

    init() {}

    /// Adds one.
    public func increment() {
        value.add(1)
    }

    /// Adds `amount`; negative amounts are ignored (a counter never goes down).
    public func increment(by amount: Double) {
        guard amount > 0 else { return }
        value.add(amount)
    }

    public var current: Double { value.load() }
}

/// A value that goes up and down (connections open, tasks waiting). Thread-safe and lock-free.
public final class Gauge: Sendable {
    private let value = AtomicDouble()

    init() {}

    public func set(_ newValue: Double) {
        value.store(newValue)
    }

    public func increment(by amount: Double = 1) {
        value.add(amount)
    }

    public func decrement(by amount: Double = 1) {
        value.add(-amount)
    }

    public var current: Double { value.load() }
}
