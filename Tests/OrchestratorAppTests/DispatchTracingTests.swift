import OrchestratorDomain
import OrchestratorTracing
import Synchronization
import Testing

@testable import OrchestratorApp

/// A dispatch store holding ready tasks in memory: claims hand them out once, reports accept
/// the current token.
final class OneShotDispatchStore: TaskDispatchStore {
    private let ready: Mutex<[StoredTask]>

    init(_ tasks: [StoredTask]) { ready = Mutex(tasks) }

    func claimTasks(_ request: ClaimRequest) async throws -> [ClaimedTask] {
        let taken = ready.withLock { tasks in
            defer { tasks.removeAll() }
            return tasks
        }
        return taken.map {
            ClaimedTask(task: $0, lease: LeaseToken(taskID: $0.taskID, fencingToken: 1), leaseExpiresAt: request.now + 30_000,
                        upstreamResults: [:], inputs: [:])
        }
    }

    func report(_ report: TaskReport) async throws -> ReportResult { .accepted(taskState: .succeeded, workflowState: nil) }
    func extendLeases(_ extensions: [LeaseExtension]) async throws -> [LeaseState] { [] }
    func resumeLeases(_ extensions: [LeaseExtension], sessionID: String, now: UnixMillis) async throws -> [LeaseState] { [] }
    func expireLeases(now: UnixMillis, limit: Int) async throws -> [ExpiredLease] { [] }
    func releaseLeases(_ leases: [LeaseToken], executorID: String, sessionID: String?, reason: String, now: UnixMillis)
        async throws -> [ExpiredLease] { [] }
}

/// The process tracer is global (`TracingSystem`), so the suite that installs one runs alone.
@Suite("Dispatch spans", .serialized)
struct DispatchTracingTests {
    @Test func dispatchSpansJoinTheWorkflowTraceUnderItsSubmissionAndReportsNestUnderThem() async throws {
        let exporter = InMemorySpanExporter()
        TracingSystem.bootstrap(Tracer(processor: SimpleSpanProcessor(exporter: exporter)))
        defer { TracingSystem.bootstrap(.disabled) }

        let traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
        let task = StoredTask(
            taskID: "t-1", workflowID: "wf_1", tenant: "default", spec: TaskSpec(key: "fetch", requiredCapabilities: ["web"]),
            state: .ready, maxAttempts: 3, unfinishedUpstream: 0, rank: 1, priority: 0, createdAt: 0, traceID: traceID, dagVersion: 1)
        let dispatch = DispatchService(store: OneShotDispatchStore([task]), signals: ChangeSignals())
        // The executor's poll call lives in its own trace.
        let pollCall = SpanContext(traceID: "0af7651916cd43dd8448eb211c80319c", spanID: "b7ad6b7169203331", sampled: true)

        let claimed = try await Tracer.$current.withValue(pollCall) {
            try await dispatch.poll(ExecutorIdentity(executorID: "ex-1", capabilities: ["web"]), maxTasks: 1, wait: .zero)
        }
        let span = try #require(claimed.first?.dispatchSpan)
        #expect(span.context.traceID == traceID)
        #expect(span.parentSpanID == TraceIdentifiers.derivedSpanID(from: "wf_1"))

        _ = try await Tracer.$current.withValue(pollCall) {
            try await dispatch.report(LeaseToken(taskID: "t-1", fencingToken: 1), executorID: "ex-1", outcome: .completed(result: []), tenants: nil)
        }

        let spans = exporter.spans
        let dispatched = try #require(spans.first { $0.name == "dispatch fetch" && $0.traceID == traceID })
        #expect(dispatched.kind == .producer)
        #expect(dispatched.spanID == span.context.spanID)
        #expect(dispatched.links.map(\.spanID) == [pollCall.spanID])
        #expect(dispatched.attributes["orchestrator.executor_id"] == .string("ex-1"))
        // The tracer is process-wide and suites run in parallel: other tests' claims and reports
        // land in this exporter too, so look in this workflow's trace only.
        let claim = try #require(spans.first { $0.name == "db.claim_tasks" && $0.traceID == traceID })
        #expect(claim.parentSpanID == dispatched.spanID)
        let report = try #require(spans.first { $0.name == "task.report" && $0.traceID == traceID })
        #expect(report.traceID == traceID && report.parentSpanID == dispatched.spanID)
        #expect(report.links.map(\.spanID) == [pollCall.spanID])
        // Nothing was recorded in the executor's own trace: an empty or routine claim is not a span.
        #expect(!spans.contains { $0.traceID == pollCall.traceID })
        #expect(dispatch.traces.count == 0)
    }
}
