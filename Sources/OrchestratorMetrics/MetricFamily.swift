import Synchronization

/// The kind of a metric family, as written on its `# TYPE` line.
public enum MetricType: String, Sendable {
    case counter, gauge, histogram
}

/// One line of exposition before formatting: a name suffix (`_bucket`, `_sum`, …), label pairs
/// and a value.
public struct MetricSample: Sendable, Equatable {
    public var suffix: String
    public var labels: [(name: String, value: String)]
    public var value: Double

    public init(suffix: String = "", labels: [(name: String, value: String)], value: Double) {
        self.suffix = suffix
        self.labels = labels
        self.value = value
    }

    public static func == (a: MetricSample, b: MetricSample) -> Bool {
        a.suffix == b.suffix && a.value == b.value && a.labels.map(\.name) == b.labels.map(\.name)
            && a.labels.map(\.value) == b.labels.map(\.value)
    }
}

/// Everything about one family at the moment of a scrape.
public struct MetricFamilySnapshot: Sendable {
    public var name: String
    public var help: String
    public var type: MetricType
    public var samples: [MetricSample]
}

/// Something the registry can ask for its current samples.
protocol MetricCollector: Sendable {
    var name: String { get }
    var type: MetricType { get }
    func collect() -> MetricFamilySnapshot
}

/// A named metric with fixed label names and one child per combination of label values.
///
/// Thread-safety: the children table is guarded by a mutex; the children themselves are
/// thread-safe. Keep the child `labels(...)` returns when the label values are known up front:
/// the lookup takes the lock and hashes the values, the child's update does neither.
public final class MetricFamily<Child: Sendable>: Sendable {
    public let name: String
    public let help: String
    public let labelNames: [String]
    let type: MetricType
    private let make: @Sendable () -> Child
    private let sampler: @Sendable (Child, [(name: String, value: String)]) -> [MetricSample]
    private let children = Mutex<[[String]: Child]>([:])

    init(
        name: String, help: String, labelNames: [String], type: MetricType, make: @escaping @Sendable () -> Child,
        sampler: @escaping @Sendable (Child, [(name: String, value: String)]) -> [MetricSample]
    ) {
        self.name = name
        self.help = help
        self.labelNames = labelNames
        self.type = type
        self.make = make
        self.sampler = sampler
    }

    /// The child for these label values (in `labelNames` order), created on first use.
    public func labels(_ values: String...) -> Child {
        labels(values)
    }

    public func labels(_ values: [String]) -> Child {
        precondition(values.count == labelNames.count, "\(name) takes labels \(labelNames), got \(values.count) values")
        return children.withLock { children in
            if let child = children[values] { return child }
            let child = make()
            children[values] = child
            return child
        }
    }

    /// Forgets every child (their values disappear from the next scrape).
    public func removeAll() {
        children.withLock { $0.removeAll() }
    }

    func snapshot() -> MetricFamilySnapshot {
        let current = children.withLock { $0 }
        var samples: [MetricSample] = []
        for key in current.keys.sorted(by: { $0.lexicographicallyPrecedes($1) }) {
            let labels = zip(labelNames, key).map { (name: $0, value: $1) }
            samples += sampler(current[key]!, labels)
        }
        return MetricFamilySnapshot(name: name, help: help, type: type, samples: samples)
    }
}

extension MetricFamily: MetricCollector {
    func collect() -> MetricFamilySnapshot { snapshot() }
}

public typealias CounterFamily = MetricFamily<Counter>
public typealias GaugeFamily = MetricFamily<Gauge>
public typealias HistogramFamily = MetricFamily<Histogram>

/// A family whose samples are computed when scraped (values another component already keeps,
/// such as the pool's open connections or the server's call counters).
final class FunctionFamily: MetricCollector {
    let name: String
    let help: String
    let type: MetricType
    let labelNames: [String]
    let read: @Sendable () -> [(labels: [String], value: Double)]

    init(name: String, help: String, type: MetricType, labelNames: [String], read: @escaping @Sendable () -> [(labels: [String], value: Double)]) {
        self.name = name
        self.help = help
        self.type = type
        self.labelNames = labelNames
        self.read = read
    }

    func collect() -> MetricFamilySnapshot {
        let samples = read().map { entry in
            MetricSample(labels: zip(labelNames, entry.labels).map { (name: $0, value: $1) }, value: entry.value)
        }
        return MetricFamilySnapshot(name: name, help: help, type: type, samples: samples)
    }
}
