@testable import OrchestratorApp
import OrchestratorDomain
import Synchronization
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

    @Test func aFailureWaitsForEveryEarlierReportAndHoldsBackTheLaterOnes() async throws {
        let pipeline = ReportPipeline(limit: 8)
        let completions = (0..<3).map { LeaseToken(taskID: "c\($0)", fencingToken: 1) }
        let failure = LeaseToken(taskID: "f", fencingToken: 1)
        let later = LeaseToken(taskID: "later", fencingToken: 1)
        for lease in completions { #expect(await pipeline.admit(lease)) }
        let order = OrderLog()
        let failureAdmitted = Task {
            let admitted = await pipeline.admit(failure, exclusively: true)
            order.append("failure")
            return admitted
        }
        try await Task.sleep(for: .milliseconds(50))
        #expect(order.entries.isEmpty)
        for lease in completions {
            order.append(lease.taskID)
            pipeline.finish(lease)
        }
        #expect(await failureAdmitted.value)
        let laterAdmitted = Task {
            let admitted = await pipeline.admit(later)
            order.append("later")
            return admitted
        }
        try await Task.sleep(for: .milliseconds(50))
        #expect(order.entries == ["c0", "c1", "c2", "failure"])
        pipeline.finish(failure)
        #expect(await laterAdmitted.value)
        #expect(order.entries == ["c0", "c1", "c2", "failure", "later"])
    }

    @Test func aClaimedTaskWaitsOnlyForTheEarlierReportsThatMayHaveMadeItReady() async throws {
        let pipeline = ReportPipeline(limit: 8)
        let a = LeaseToken(taskID: "wf_1-a", fencingToken: 1)
        let unknown = LeaseToken(taskID: "elsewhere", fencingToken: 1)
        let later = LeaseToken(taskID: "wf_1-a2", fencingToken: 1)
        let b = SlowAnswerChainStore.task("b")  // depends on a
        let c = SlowAnswerChainStore.task("c")  // another workflow
        #expect(await pipeline.admit(a, subject: .task(workflowID: "wf_1", key: "a", mayProposeGraph: false)))
        let mark = pipeline.admissions
        #expect(await pipeline.admit(later, subject: .unknown))
        #expect(!pipeline.answered(before: mark, unblocking: b))
        #expect(pipeline.answered(before: mark, unblocking: c))
        #expect(pipeline.inFlightWorkflows(before: mark) == (["wf_1"], false))
        let order = OrderLog()
        let answered = Task {
            await pipeline.waitUntilAnswered(before: mark, unblocking: b)
            order.append("answered")
        }
        try await Task.sleep(for: .milliseconds(50))
        #expect(order.entries.isEmpty)
        order.append("a")
        pipeline.finish(a)
        await answered.value
        #expect(order.entries == ["a", "answered"])
        // A report of a lease not held here may have made anything ready.
        #expect(await pipeline.admit(unknown, subject: .unknown))
        #expect(!pipeline.answered(before: pipeline.admissions, unblocking: c))
        #expect(pipeline.inFlightWorkflows(before: pipeline.admissions).unknown)
        pipeline.finish(unknown)
        pipeline.finish(later)
    }
}


private final class OrderLog: Sendable {
    private let log = Mutex<[String]>([])
    func append(_ entry: String) { log.withLock { $0.append(entry) } }
    var entries: [String] { log.withLock { $0 } }
}
