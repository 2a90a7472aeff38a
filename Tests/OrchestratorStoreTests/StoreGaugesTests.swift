import Testing

@testable import OrchestratorStore

/// `orchestrator_ready_tasks{capability}` takes its label values from what submitters wrote: the
/// number of series is bounded, the rest summed under one.
@Suite("Store gauges")
struct StoreGaugesTests {
    @Test func readyCapabilitiesAreBoundedWithTheRestSummed() {
        var counts: [String: Int] = ["gpu": 50, "": 7]
        for index in 0..<10_000 { counts["junk-\(index)"] = 1 }
        let bounded = StoreGauges.bounded(counts, limit: 100)
        #expect(bounded.count == 101)
        #expect(bounded["gpu"] == 50 && bounded[""] == 7)
        #expect(bounded[StoreGauges.otherCapabilities] == 10_000 - 98)
        #expect(bounded.values.reduce(0, +) == counts.values.reduce(0, +))
        // Under the limit: unchanged.
        #expect(StoreGauges.bounded(["a": 1, "b": 2], limit: 100) == ["a": 1, "b": 2])
        #expect(StoreGauges.maxCapabilities == 100)
    }
}
