import Testing

@testable import OrchestratorApp

@Suite("Log throttle")
struct LogThrottleTests {
    @Test func theFirstOfAKindIsLoggedThenOnePerIntervalWithTheCountLeftOut() {
        let clock = ManualWallClock()
        let throttle = LogThrottle(interval: .seconds(30), clock: clock)
        #expect(throttle.admit("claim failed") == 0)
        for _ in 0..<5 {
            clock.advance(1_000)
            #expect(throttle.admit("claim failed") == nil)
        }
        // Kinds are counted apart.
        #expect(throttle.admit("report not applied") == 0)
        clock.advance(25_000)
        #expect(throttle.admit("claim failed") == 5)
        #expect(throttle.admit("claim failed") == nil)
        clock.advance(30_000)
        #expect(throttle.admit("claim failed") == 1)
    }
}
