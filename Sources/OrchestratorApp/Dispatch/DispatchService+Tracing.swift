import OrchestratorTracing
import Synchronization

/// The dispatch span of each lease this process handed out, so that the executor's report can
/// be recorded in the workflow's trace, as a child of the dispatch that led to it.
///
/// Memory is bounded: past `capacity` entries the table is cleared (reports then fall back to
/// the calling RPC's span as parent; nothing but the trace's shape depends on this table).
/// Thread-safety: guarded by `entries`' mutex.
final class DispatchTraces: Sendable {
    private let entries = Mutex<[LeaseToken: SpanContext]>([:])
    let capacity: Int

    init(capacity: Int = 65_536) { self.capacity = capacity }

    func record(_ lease: LeaseToken, _ context: SpanContext) {
        entries.withLock { entries in
            if entries.count >= capacity { entries.removeAll(keepingCapacity: true) }
            entries[lease] = context
        }
    }

    func context(of lease: LeaseToken) -> SpanContext? { entries.withLock { $0[lease] } }

    func forget(_ lease: LeaseToken) { _ = entries.withLock { $0.removeValue(forKey: lease) } }

    var count: Int { entries.withLock { $0.count } }
}

extension DispatchService {
    /// Runs the claim's store call outside any span: an idle executor's dispatch loop claims
    /// every few seconds, and a span per empty claim would bury the traces that matter. A claim
    /// that returns tasks is recorded inside each task's dispatch span instead (`traceDispatch`).
    func untraced<T>(_ body: () async throws -> T) async rethrows -> T {
        try await Tracer.$current.withValue(nil) { try await body() }
    }

    /// Starts each claimed task's dispatch span in its workflow's trace, as a child of the
    /// workflow's submission span (whose id is derived from the workflow id), with the claim's
    /// database work as its first child. The span ends when the assignment is handed over.
    func traceDispatch(
        _ claimed: [ClaimedTask], executor: ExecutorIdentity, sessionID: String, claimStarted: UInt64, claimEnded: UInt64,
        databaseWork: String = "db.claim_tasks"
    ) -> [ClaimedTask] {
        guard !claimed.isEmpty else { return claimed }  // an empty claim is not a span
        let tracer = TracingSystem.tracer
        // The executor's lease stream (or poll call) lives in the executor's own trace: linked, not parent.
        let links = Tracer.current.map { [SpanLink(traceID: $0.traceID, spanID: $0.spanID)] } ?? []
        let batch = claimed.count
        return claimed.map { claimed in
            var traced = claimed
            let task = claimed.task
            let parent = TraceIdentifiers.isValidTraceID(task.traceID)
                ? SpanContext(
                    traceID: task.traceID, spanID: TraceIdentifiers.derivedSpanID(from: task.workflowID),
                    sampled: task.traceSampled ?? tracer.sampler.shouldSample(traceID: task.traceID), traceState: task.traceState)
                : nil
            let span = tracer.startSpan(
                "dispatch \(task.spec.key.rawValue)", kind: .producer, parent: parent, startUnixNanos: claimStarted,
                attributes: [
                    "orchestrator.workflow_id": .string(task.workflowID), "orchestrator.task_id": .string(task.taskID),
                    "orchestrator.task_key": .string(task.spec.key.rawValue), "orchestrator.attempt": .int(task.attempt),
                    "orchestrator.executor_id": .string(executor.executorID), "orchestrator.session_id": .string(sessionID),
                ],
                links: links)
            if span.isRecording {
                tracer.startSpan(
                    databaseWork, kind: .client, parent: span.context, startUnixNanos: claimStarted,
                    attributes: ["db.system": "postgresql", "orchestrator.claimed": .int(batch)]
                ).end(at: claimEnded)
                // Only recorded traces need their report placed under the dispatch.
                traces.record(claimed.lease, span.context)
            }
            traced.dispatchSpan = span
            return traced
        }
    }

    /// Runs a report's store work in a span of the workflow's trace (child of the lease's
    /// dispatch span when this process dispatched it), linked to the executor's calling span.
    func traceReport<T>(_ lease: LeaseToken, outcome: TaskReport.Outcome, _ body: () async throws -> T) async throws -> T {
        let tracer = TracingSystem.tracer
        let caller = Tracer.current
        let parent = traces.context(of: lease) ?? caller
        let kind: String
        switch outcome {
        case .progress: kind = "progress"
        case .completed: kind = "completed"
        case .failed: kind = "failed"
        }
        var links: [SpanLink] = []
        if let caller, caller != parent { links.append(SpanLink(traceID: caller.traceID, spanID: caller.spanID)) }
        let span = tracer.startSpan(
            "task.report", parent: parent,
            attributes: ["orchestrator.task_id": .string(lease.taskID), "orchestrator.fencing_token": .int(lease.fencingToken),
                         "orchestrator.report": .string(kind)],
            links: links)
        return try await tracer.run(span) { _ in try await body() }
    }
}
