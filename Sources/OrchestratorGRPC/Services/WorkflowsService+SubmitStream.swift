public import NGRPC
public import OrchestratorAPI
import OrchestratorApp
import OrchestratorAuth
import OrchestratorTracing
import Synchronization

/// `Workflows/SubmitStream`: queries in, one acceptance or rejection each out, and the events and
/// outcome of the watched ones.
extension WorkflowsService {
    public func submitStream(
        _ requests: RPCRequestStream<Orchestrator_V1_SubmitStreamRequest>, responses: RPCResponseWriter<Orchestrator_V1_SubmitStreamResponse>,
        context: ServerContext
    ) async throws {
        // Each query is answered on the stream (accepted or rejected) rather than through the
        // call's status, so only the audit cause is bound here, not `mappingErrors`.
        try await auditing(context) { try await submitEach(requests, responses: responses, context: context) }
    }

    /// One query of a SubmitStream. A query carrying its own `traceparent` gets a span in that trace
    /// and its workflow joins it, so a long-lived stream does not put thousands of workflows in one
    /// trace; without one it belongs to the stream's trace.
    func submitInItsTrace(_ request: Orchestrator_V1_SubmitStreamRequest, context: ServerContext) async throws -> SubmitOutcome {
        guard !request.traceparent.isEmpty else {
            return try await submit(requestID: request.requestID, query: request.query, context: context)
        }
        guard let parent = SpanContext.parse(traceparent: request.traceparent) else {
            throw AppError.invalidArgument(
                "traceparent is not a W3C traceparent (00-<32 hex trace id>-<16 hex span id>-<2 hex flags>)")
        }
        let tracer = TracingSystem.tracer
        let span = tracer.startSpan("orchestrator.v1.Workflows/SubmitStream submit", kind: .server, parent: parent)
        span.setAttribute("orchestrator.request_id", .string(request.requestID))
        return try await tracer.run(span) { _ in
            try await submit(
                requestID: request.requestID, query: request.query, context: context,
                trace: SubmittedTrace(traceID: parent.traceID, traceState: nil, sampled: parent.sampled))
        }
    }

    /// Reads queries in a task of its own and follows the watched workflows in child tasks of
    /// the call. The reader is not a child: a read waiting on a quiet client cannot be cancelled,
    /// and a graceful shutdown must end a call that follows workflows, as it ends watches — such a
    /// call held the shutdown for the whole grace period and was then cut by the transport,
    /// without saying where to resume (found by black-box testing). The reader ends when the
    /// transport closes the stream after the call returns.
    func submitEach(
        _ requests: RPCRequestStream<Orchestrator_V1_SubmitStreamRequest>, responses: RPCResponseWriter<Orchestrator_V1_SubmitStreamResponse>,
        context: ServerContext
    ) async throws {
        let writer = SerialWriter(responses)
        let progress = WatchProgress()
        let (commands, command) = AsyncStream<StreamCommand>.makeStream()
        let reader = Task {
            // Workflows whose events this stream already carries: a resent query (same request id)
            // must not make the client see every event twice.
            var watched = Set<String>()
            do {
                // One query at a time: the next is read only after this one is stored, so HTTP/2
                // flow control bounds how far a fast submitter runs ahead.
                for try await request in requests {
                    // Each query acts for the caller as a unary SubmitQuery would: an expired token
                    // ends the stream (it went on creating workflows; found by black-box testing).
                    if let expired = CallerIdentity.expiredToken(context, now: UnixClock.now()) {
                        throw RPCStatus(.unauthenticated, expired)
                    }
                    do {
                        let outcome = try await submitInItsTrace(request, context: context)
                        try await writer.write(Orchestrator_V1_SubmitStreamResponse(
                            requestID: request.requestID,
                            kind: .accepted(.init(
                                workflowID: outcome.workflow.workflowID, dagVersion: Int32(clamping: outcome.workflow.currentDagVersion),
                                created: outcome.created))))
                        if request.watch, watched.insert(outcome.workflow.workflowID).inserted {
                            command.yield(.watch(workflowID: outcome.workflow.workflowID, tenant: outcome.workflow.tenant, requestID: request.requestID))
                        }
                    } catch let status as RPCStatus where status.code == .cancelled {
                        throw status
                    } catch {
                        try await writer.write(Orchestrator_V1_SubmitStreamResponse(
                            requestID: request.requestID,
                            kind: .rejected(StatusMapping.rejection(for: error, logger: logger, method: context.method.path))))
                    }
                }
                command.yield(.requestsEnded(nil))
            } catch {
                command.yield(.requestsEnded(error))
            }
            command.finish()
        }
        let sentinel = Task { [watch] in
            await watch.shutdownBegan()
            command.yield(.shutdown)
        }
        defer {
            reader.cancel()
            sentinel.cancel()
        }
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                commands: for await next in commands {
                    switch next {
                    case .watch(let workflowID, let tenant, let requestID):
                        progress.started(workflowID)
                        group.addTask {
                            do {
                                try await watch.follow(
                                    EventQuery(afterSequence: 0, workflowID: workflowID, tenant: tenant),
                                    stopWhen: { $0.isWorkflowTerminal },
                                    emit: { event in
                                        try await writer.write(.init(requestID: requestID, kind: .event(Orchestrator_V1_WorkflowEvent(event))))
                                        progress.sent(workflowID, sequence: event.sequence)
                                    })
                            } catch let interrupted as WatchInterrupted {
                                command.yield(.shutdown)  // wakes the loop below, which may be reading commands
                                throw interrupted
                            }
                            if let finished = try await workflows.workflow(id: workflowID, tenant: tenant, queryGraph: .answered) {
                                try await writer.write(.init(requestID: requestID, kind: .outcome(Orchestrator_V1_Workflow(finished, now: clock.now()).fittingDefaultClients())))
                            }
                            progress.finished(workflowID)
                        }
                    case .requestsEnded(let error):
                        if let error { throw error }
                        break commands
                    case .shutdown:
                        // A stream following workflows only waits on them; one without is a
                        // submitter's pipeline, drained like any call in flight.
                        if progress.following { throw StreamInterrupted() }
                    }
                }
                try await group.waitForAll()
            }
        } catch is WatchInterrupted {
            throw RPCStatus(.unavailable, progress.resumeAdvice())
        } catch is StreamInterrupted {
            throw RPCStatus(.unavailable, progress.resumeAdvice())
        }
    }
}

/// The shutdown reached the call before any of its watches noticed it.
struct StreamInterrupted: Error {}

/// What a SubmitStream's reader tells the call.
enum StreamCommand: Sendable {
    case watch(workflowID: String, tenant: String, requestID: String)
    case requestsEnded((any Error)?)
    case shutdown
}

/// The last event sent of each workflow a SubmitStream follows, for the shutdown's answer.
final class WatchProgress: Sendable {
    private struct Followed {
        var lastSequence: Int64 = 0
        var finished = false
    }

    private let state = Mutex<(order: [String], followed: [String: Followed])>(([], [:]))

    func started(_ workflowID: String) {
        state.withLock { state in
            state.order.append(workflowID)
            state.followed[workflowID] = Followed()
        }
    }

    func sent(_ workflowID: String, sequence: Int64) { state.withLock { $0.followed[workflowID]?.lastSequence = sequence } }
    func finished(_ workflowID: String) { state.withLock { $0.followed[workflowID]?.finished = true } }

    /// Whether some watched workflow has not finished yet.
    var following: Bool { state.withLock { $0.followed.values.contains { !$0.finished } } }

    /// The shutdown's message: queries to resend, and where to watch each unfinished workflow again.
    func resumeAdvice(limit: Int = 20) -> String {
        let open = state.withLock { state in
            state.order.compactMap { id in state.followed[id].flatMap { $0.finished ? nil : (id, $0.lastSequence) } }
        }
        var message = "orchestratord is shutting down; resend the queries this stream did not answer, with the same request_id"
        guard !open.isEmpty else { return message }
        let listed = open.prefix(limit).map { "\($0.0) after_sequence = \($0.1)" }.joined(separator: ", ")
        message += "; follow the watched workflows with WatchWorkflow: \(listed)"
        if open.count > limit { message += " and \(open.count - limit) more (ListWorkflows)" }
        return message
    }
}
