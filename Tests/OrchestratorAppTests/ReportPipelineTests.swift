@testable import OrchestratorApp
import OrchestratorDomain
import Testing

/// A lease stream's report admission: bounded, one report per lease at a time, and closed on the
/// server's shutdown so that no report is applied after the session's last ack went out.
@Suite("Report pipeline")
struct ReportPipelineTests {
    @Test func afterCloseNothingIsAdmittedAndWhatWasAdmittedStillFinishes() async {
        let pipeline = ReportPipeline(limit: 1)
        let first = LeaseToken(taskID: "a", fencingToken: 1)
        let second = LeaseToken(taskID: "b", fencingToken: 1)
        #expect(await pipeline.admit(first))
        // The limit is reached: this admission waits, and the close answers it with a refusal.
        async let waiting = pipeline.admit(second)
        try? await Task.sleep(for: .milliseconds(50))
        pipeline.close()
        #expect(await waiting == false)
        #expect(await pipeline.admit(LeaseToken(taskID: "c", fencingToken: 1)) == false)
        async let idle: Void = pipeline.idle()
        pipeline.finish(first)
        await idle
    }
}
