import OrchestratorMetrics
import OrchestratorObservability
import Testing

@Suite("Metrics registry and Prometheus exposition")
struct MetricsRegistryTests {
    @Test func counterAndGaugeRenderWithHelpTypeAndSortedLabels() {
        let registry = MetricsRegistry()
        let requests = registry.counter("demo_requests_total", help: "Requests.", labels: ["method", "code"])
        requests.labels("b", "OK").increment()
        requests.labels("a", "OK").increment(by: 2)
        requests.labels("a", "OK").increment()
        requests.labels("a", "OK").increment(by: -5)  // ignored: counters never go down
        let open = registry.gauge("demo_open", help: "Open things.")
        open.labels().increment(by: 3)
        open.labels().decrement()
        #expect(registry.render() == """
            # HELP demo_requests_total Requests.
            # TYPE demo_requests_total counter
            demo_requests_total{method="a",code="OK"} 3
            demo_requests_total{method="b",code="OK"} 1
            # HELP demo_open Open things.
            # TYPE demo_open gauge
            demo_open 2

            """)
    }

    @Test func histogramBucketsAreCumulativeWithInclusiveUpperBounds() {
        let registry = MetricsRegistry()
        let family = registry.histogram("demo_seconds", help: "Durations.", labels: ["op"], buckets: [0.1, 1, 10])
        let histogram = family.labels("read")
        for value in [0.05, 0.1, 0.5, 1, 20] { histogram.observe(value) }
        #expect(registry.render() == """
            # HELP demo_seconds Durations.
            # TYPE demo_seconds histogram
            demo_seconds_bucket{op="read",le="0.1"} 2
            demo_seconds_bucket{op="read",le="1"} 4
            demo_seconds_bucket{op="read",le="10"} 4
            demo_seconds_bucket{op="read",le="+Inf"} 5
            demo_seconds_sum{op="read"} 21.65
            demo_seconds_count{op="read"} 5

            """)
    }

    @Test func durationsAreObservedInSeconds() {
        let registry = MetricsRegistry()
        let histogram = registry.histogram("demo_duration_seconds", help: "x", buckets: [0.01, 1]).labels()
        histogram.observe(Duration.milliseconds(5))
        histogram.observe(Duration.seconds(2))
        let snapshot = histogram.snapshot
        #expect(snapshot.cumulative == [1, 1, 2])
        #expect(snapshot.count == 2)
        #expect(abs(snapshot.sum - 2.005) < 1e-9)
    }

    @Test func labelValuesAndHelpAreEscaped() {
        let registry = MetricsRegistry()
        registry.counter("demo_total", help: "Line one\nback\\slash", labels: ["path"]).labels("a\"b\\c\nd").increment()
        let text = registry.render()
        #expect(text.contains("# HELP demo_total Line one\\nback\\\\slash\n"))
        #expect(text.contains(#"demo_total{path="a\"b\\c\nd"} 1"#))
    }

    @Test func registeringTheSameNameAgainReturnsTheSameFamily() {
        let registry = MetricsRegistry()
        let first = registry.counter("demo_total", help: "x", labels: ["a"])
        let second = registry.counter("demo_total", help: "x", labels: ["a"])
        first.labels("1").increment()
        second.labels("1").increment()
        #expect(first.labels("1").current == 2)
        #expect(registry.collect().count == 1)
    }

    @Test func functionFamiliesAreReadAtScrapeTime() {
        let registry = MetricsRegistry()
        let box = Box()
        registry.register("demo_pool_connections", help: "Connections.", type: .gauge, labels: ["state"]) {
            [(["idle"], Double(box.value)), (["in_use"], 1)]
        }
        box.value = 4
        #expect(registry.render().contains("demo_pool_connections{state=\"idle\"} 4\n"))
        box.value = 7
        #expect(registry.render().contains("demo_pool_connections{state=\"idle\"} 7\n"))
    }

    @Test func numbersFormatAsPrometheusParsersExpect() {
        #expect(PrometheusText.format(3) == "3")
        #expect(PrometheusText.format(0.25) == "0.25")
        #expect(PrometheusText.format(.infinity) == "+Inf")
        #expect(PrometheusText.format(-.infinity) == "-Inf")
        #expect(PrometheusText.format(.nan) == "NaN")
    }

    @Test func processMetricsReadProcSelf() {
        let registry = MetricsRegistry()
        ProcessMetrics.register(into: registry)
        var values: [String: Double] = [:]
        for family in registry.collect() {
            for sample in family.samples { values[family.name + sample.suffix] = sample.value }
        }
        #expect((values["process_resident_memory_bytes"] ?? 0) > 1_000_000)
        #expect((values["process_virtual_memory_bytes"] ?? 0) >= (values["process_resident_memory_bytes"] ?? 0))
        #expect((values["process_threads"] ?? 0) >= 1)
        #expect((values["process_open_fds"] ?? 0) >= 3)  // stdin, stdout, stderr at least
        #expect((values["process_max_fds"] ?? 0) >= (values["process_open_fds"] ?? 0))
        #expect((values["process_cpu_seconds_total"] ?? -1) >= 0)
    }

    @Test func concurrentUpdatesAreAllCounted() async {
        let registry = MetricsRegistry()
        let counter = registry.counter("demo_total", help: "x").labels()
        let histogram = registry.histogram("demo_seconds", help: "x", buckets: [1]).labels()
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    for _ in 0..<10_000 {
                        counter.increment()
                        histogram.observe(0.5)
                    }
                }
            }
        }
        #expect(counter.current == 80_000)
        #expect(histogram.snapshot.count == 80_000)
        #expect(histogram.snapshot.cumulative == [80_000, 80_000])
    }
}

/// A mutable value shared with a scrape closure in a test.
final class Box: @unchecked Sendable {
    var value = 0
}
