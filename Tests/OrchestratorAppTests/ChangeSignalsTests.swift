import OrchestratorApp
import Testing

@Suite struct ChangeSignalsTests {
    @Test func aSignalAfterTheGenerationWasReadIsNeverLost() async {
        let signals = ChangeSignals()
        let seen = signals.generation(.tasksReady)
        signals.signal(.tasksReady)  // arrives between the read and the wait
        let started = ContinuousClock.now
        await signals.wait(.tasksReady, after: seen, timeout: .seconds(30))
        #expect(ContinuousClock.now - started < .seconds(5))
    }

    @Test func waitersWakeOnTheirKindOnly() async throws {
        let signals = ChangeSignals()
        let seen = signals.generation(.events)
        let waiter = Task { await signals.wait(.events, after: seen, timeout: .seconds(30)) }
        while signals.waiterCount == 0 { try await Task.sleep(for: .milliseconds(5)) }
        signals.signal(.tasksReady)
        try await Task.sleep(for: .milliseconds(50))
        #expect(signals.waiterCount == 1)
        signals.signal(.events)
        await waiter.value
        #expect(signals.waiterCount == 0)
    }

    @Test func waitEndsAtItsTimeout() async {
        let signals = ChangeSignals()
        let started = ContinuousClock.now
        await signals.wait(.events, after: signals.generation(.events), timeout: .milliseconds(50))
        #expect(ContinuousClock.now - started >= .milliseconds(50))
        #expect(signals.waiterCount == 0)
    }

    @Test func cancellationEndsTheWait() async throws {
        let signals = ChangeSignals()
        let waiter = Task { await signals.wait(.events, after: signals.generation(.events), timeout: .seconds(60)) }
        while signals.waiterCount == 0 { try await Task.sleep(for: .milliseconds(5)) }
        waiter.cancel()
        await waiter.value
        #expect(signals.waiterCount == 0)
    }
}
