import Synchronization

/// The metrics of one process, registered by name, rendered in the Prometheus text format.
///
/// Components get their families from the registry once (at construction) and record into the
/// children; the registry is only consulted again when scraped. Registering a name again with
/// the same type and labels returns the existing family, so two instances of a service share
/// their metrics; a conflicting registration is a programming error and traps.
///
/// Thread-safety: the family list is guarded by a mutex; families are thread-safe.
public final class MetricsRegistry: Sendable {
    private let collectors = Mutex<[any MetricCollector]>([])

    public init() {}

    public func counter(_ name: String, help: String, labels: [String] = []) -> CounterFamily {
        family(name, help: help, labels: labels, type: .counter, make: { Counter() }) { counter, labels in
            [MetricSample(labels: labels, value: counter.current)]
        }
    }

    public func gauge(_ name: String, help: String, labels: [String] = []) -> GaugeFamily {
        family(name, help: help, labels: labels, type: .gauge, make: { Gauge() }) { gauge, labels in
            [MetricSample(labels: labels, value: gauge.current)]
        }
    }

    /// - Parameter buckets: upper bounds, ascending and finite (`+Inf` is added).
    public func histogram(_ name: String, help: String, labels: [String] = [], buckets: [Double]) -> HistogramFamily {
        precondition(!buckets.isEmpty && zip(buckets, buckets.dropFirst()).allSatisfy { $0 < $1 } && buckets.allSatisfy(\.isFinite),
                     "\(name): bucket bounds must be finite and strictly ascending")
        precondition(!labels.contains("le"), "\(name): `le` is reserved for histogram buckets")
        return family(name, help: help, labels: labels, type: .histogram, make: { Histogram(bounds: buckets) }) { histogram, labels in
            let (cumulative, sum, count) = histogram.snapshot
            var samples: [MetricSample] = []
            samples.reserveCapacity(cumulative.count + 2)
            for (index, total) in cumulative.enumerated() {
                let bound = index < histogram.bounds.count ? PrometheusText.format(histogram.bounds[index]) : "+Inf"
                samples.append(MetricSample(suffix: "_bucket", labels: labels + [(name: "le", value: bound)], value: Double(total)))
            }
            samples.append(MetricSample(suffix: "_sum", labels: labels, value: sum))
            samples.append(MetricSample(suffix: "_count", labels: labels, value: Double(count)))
            return samples
        }
    }

    /// A family whose values are read at scrape time by `read`, which returns label values (in
    /// `labels` order) and a value per child. `read` runs on the scraping thread: keep it cheap
    /// and non-blocking (read counters, or a snapshot refreshed elsewhere).
    public func register(
        _ name: String, help: String, type: MetricType, labels: [String] = [],
        read: @escaping @Sendable () -> [(labels: [String], value: Double)]
    ) {
        precondition(type != .histogram, "function families are counters or gauges")
        Self.validate(name: name, labels: labels)
        let collector = FunctionFamily(name: name, help: help, type: type, labelNames: labels, read: read)
        collectors.withLock { collectors in
            precondition(!collectors.contains { $0.name == name }, "metric \(name) registered twice")
            collectors.append(collector)
        }
    }

    /// Every family's current samples, in registration order.
    public func collect() -> [MetricFamilySnapshot] {
        collectors.withLock { $0 }.map { $0.collect() }
    }

    /// The Prometheus text exposition (format 0.0.4) of every family.
    public func render() -> String {
        PrometheusText.render(collect())
    }

    private func family<Child: Sendable>(
        _ name: String, help: String, labels: [String], type: MetricType, make: @escaping @Sendable () -> Child,
        sampler: @escaping @Sendable (Child, [(name: String, value: String)]) -> [MetricSample]
    ) -> MetricFamily<Child> {
        Self.validate(name: name, labels: labels)
        return collectors.withLock { collectors in
            if let existing = collectors.first(where: { $0.name == name }) {
                guard let same = existing as? MetricFamily<Child>, same.labelNames == labels, same.type == type else {
                    preconditionFailure("metric \(name) registered twice with different types or labels")
                }
                return same
            }
            let created = MetricFamily(name: name, help: help, labelNames: labels, type: type, make: make, sampler: sampler)
            collectors.append(created)
            return created
        }
    }

    static func validate(name: String, labels: [String]) {
        precondition(isValidName(name, allowColon: true), "invalid metric name \(name)")
        for label in labels {
            precondition(isValidName(label, allowColon: false) && !label.hasPrefix("__"), "invalid label name \(label) on \(name)")
        }
        precondition(Set(labels).count == labels.count, "duplicate label names on \(name)")
    }

    /// `[a-zA-Z_:][a-zA-Z0-9_:]*` for metric names; labels without `:`.
    static func isValidName(_ name: String, allowColon: Bool) -> Bool {
        guard let first = name.utf8.first else { return false }
        func letter(_ byte: UInt8) -> Bool {
            (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x61 && byte <= 0x7a) || byte == 0x5f || (allowColon && byte == 0x3a)
        }
        return letter(first) && name.utf8.allSatisfy { letter($0) || ($0 >= 0x30 && $0 <= 0x39) }
    }
}
