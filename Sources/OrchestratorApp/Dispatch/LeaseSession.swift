import OrchestratorTracing
import Synchronization
import Logging

extension DispatchService {
    /// Runs one executor's lease stream: resumes the leases it presents, pushes assignments as
    /// tasks become ready (woken by `ChangeSignals`, not by polling), applies its heartbeats and
    /// reports, and gives every lease back the moment the stream ends, breaks, or stalls.
    ///
    /// - Parameters:
    ///   - executor: what the hello said.
    ///   - resume: leases the executor still holds from a previous stream.
    ///   - inbound: the messages after the hello; the sequence ends when the executor half-closes.
    ///   - send: writes one message to the stream (suspends under flow control).
    public func runSession<Inbound: AsyncSequence & Sendable>(
        executor: ExecutorIdentity,
        resume: [LeaseToken],
        inbound: Inbound,
        send: @escaping @Sendable (SessionOutput) async throws -> Void
    ) async throws where Inbound.Element == SessionInput {
        var bounded = executor
        bounded.maxInFlight = min(max(executor.maxInFlight, 1), configuration.maxInFlightLimit)
        let executor = bounded
        let sessionID = ids.make(prefix: "ses")
        let outbox = SessionOutbox(send: send)
        let silence = SessionSilence(openedAt: clock.now())
        let welcomed = SessionWelcomed()
        let claimDue = SessionClaimDue()
        let draining = SessionDraining()
        registry.registerSession(sessionID, handle: .init(revoke: { [signals] token, reason in
            try? outbox.enqueue(.revocation(token, reason: reason))
            // The freed slot is filled from the queue now, not at the next idle recheck (5 s),
            // and until then direct dispatch passes the stream by: new work went to it ahead of
            // older, higher-priority ready tasks (found by black-box testing).
            claimDue.due.store(true, ordering: .releasing)
            signals.nudge(sessionID)
        }, heartbeatsStopped: { [signals] in
            silence.stopped.store(true, ordering: .releasing)
            signals.signal(.tasksReady)  // wake the dispatch loop so it ends the session now
        }, slotFreed: { [signals] in
            // As for a revocation: older ready tasks first. A slot freed by a failure report was
            // handed a newer workflow's task by direct dispatch, ahead of a higher-priority one
            // waiting in the queue (found by black-box testing).
            claimDue.due.store(true, ordering: .releasing)
            signals.nudge(sessionID)
        }, isDraining: { draining.requested.load(ordering: .acquiring) }, offer: .init(
            executor: executor, cause: AuditCause.current, streamSpan: Tracer.current,
            isReady: { [clock, configuration] in
                welcomed.sent.load(ordering: .acquiring) && outbox.pendingAssignments == 0 && outbox.failure == nil
                    && !silence.stopped.load(ordering: .acquiring) && !claimDue.due.load(ordering: .acquiring)
                    && !silence.isQuiet(now: clock.now(), configuration: configuration)
                    && !draining.requested.load(ordering: .acquiring) && !executor.credentialsExpired(clock)
            },
            deliver: { tasks in
                do {
                    for task in tasks { try outbox.enqueue(.assignment(task)) }
                    return true
                } catch {
                    return false
                }
            })), openedAt: clock.now())
        var sessionLogger = logger
        sessionLogger[metadataKey: "executor_id"] = "\(executor.executorID)"
        sessionLogger[metadataKey: "session_id"] = "\(sessionID)"
        let log = sessionLogger
        log.info("executor connected", metadata: ["capabilities": "\(executor.capabilities.sorted())", "max_in_flight": "\(executor.maxInFlight)"])

        var endReason = "stream ended"
        // Reports are applied concurrently (their completions share the store's batches), at most
        // 2 × max_in_flight at once; the session waits for them before giving leases back.
        let pipeline = ReportPipeline(limit: 2 * executor.maxInFlight)
        var inboundTask: Task<Void, Never>?
        do {
            let (resumed, rejected) = try await resumeLeases(resume, executor: executor, sessionID: sessionID)
            if !rejected.isEmpty {
                // Work the executor will drop (lapsed, reassigned, finished, or held under another
                // identity — docs/UPGRADING.md): worth an operator's notice when it is unexpected.
                logger.info("resumed leases rejected", metadata: [
                    "executor_id": "\(executor.executorID)", "resumed": "\(resumed.count)", "rejected": "\(rejected.count)",
                ])
            }
            try outbox.enqueue(.welcome(
                sessionID: sessionID, heartbeatIntervalMillis: DispatchConfiguration.millis(configuration.heartbeatInterval),
                leaseTTLMillis: configuration.leaseTTLMillis, resumed: resumed, rejected: rejected))
            welcomed.sent.store(true, ordering: .releasing)
            // The inbound loop runs in its own task: a read blocked on a silent executor cannot be
            // cancelled, and must not keep the session alive once dispatch has given up on the
            // stream. It ends when the transport closes the stream after this handler returns.
            let (inboundEnded, inboundEnd) = AsyncStream<Result<Void, any Error>>.makeStream()
            let reader = Task {
                do {
                    try await self.inboundLoop(
                        inbound, executor: executor, sessionID: sessionID, outbox: outbox, pipeline: pipeline, draining: draining,
                        silence: silence)
                    inboundEnd.yield(.success(()))
                } catch {
                    inboundEnd.yield(.failure(error))
                }
                inboundEnd.finish()
            }
            inboundTask = reader
            defer { reader.cancel() }
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    try await self.dispatchLoop(
                        executor: executor, sessionID: sessionID, outbox: outbox, pipeline: pipeline, silence: silence,
                        claimDue: claimDue, draining: draining)
                }
                group.addTask {
                    for await result in inboundEnded {
                        try result.get()
                        return
                    }
                }
                // Whichever ends first (the executor half-closed, or dispatch failed) ends the session.
                try await group.next()
                group.cancelAll()
            }
        } catch is ServerShuttingDown {
            // Leases stay valid in the database: the executor reconnects (here after a restart, or
            // to another server) and resumes them with their fencing tokens. Reports already
            // received are applied and answered first: an executor that sent completions right
            // before the shutdown got none of their acks although they were stored, and then saw
            // those leases among its rejected resumes, unable to tell "stored" from "taken away"
            // (found by black-box testing).
            _ = registry.removeSession(sessionID)
            // Reports still arriving are not applied: each one admitted before this is answered
            // below; one applied later was stored with no ack, its lease kept for a resume that
            // then rejected it (a CI run). Unapplied, the executor resumes and sends it again.
            pipeline.close()
            await pipeline.idle()
            outbox.finish()
            await outbox.drained()
            log.info("executor session ended: server shutting down")
            throw AppError.unavailable("orchestratord is shutting down; reconnect and resume your leases")
        } catch {
            endReason = "stream failed: \(error)"
            await settleReports(inboundTask, pipeline: pipeline)
            await releaseAll(of: sessionID, executorID: executor.executorID, reason: endReason)
            outbox.finish()
            log.info("executor disconnected", metadata: ["reason": "\(endReason)"])
            throw error
        }
        await settleReports(inboundTask, pipeline: pipeline)
        await releaseAll(of: sessionID, executorID: executor.executorID, reason: endReason)
        outbox.finish()
        await outbox.drained()
        log.info("executor disconnected", metadata: ["reason": "\(endReason)"])
    }

    /// Before the session gives its leases back: every report the executor sent before its
    /// stream ended is applied first (EXECUTORS.md: a completion sent right before hanging up is
    /// stored, not refused as stale after a release that overtook it). When the transport closed
    /// the stream (this handler is cancelled), the reader is drained: the messages that arrived
    /// are finite and still delivered. Otherwise the stream may still be open and its reader
    /// blocked on a silent executor, so only the reports already admitted are awaited.
    private func settleReports(_ reader: Task<Void, Never>?, pipeline: ReportPipeline) async {
        if Task.isCancelled, let reader { await reader.value }
        await pipeline.idle()
    }

    private func resumeLeases(_ tokens: [LeaseToken], executor: ExecutorIdentity, sessionID: String) async throws -> (resumed: [LeaseToken], rejected: [LeaseToken]) {
        guard !tokens.isEmpty else { return ([], []) }
        // Each lease once, in the order given (a lease listed twice came back twice).
        var seen = Set<LeaseToken>()
        let tokens = tokens.filter { seen.insert($0).inserted }
        let now = clock.now()
        let states: [LeaseState]
        do {
            states = try await store.resumeLeases(
                tokens.map { LeaseExtension(lease: $0, executorID: executor.executorID, until: now + configuration.leaseTTLMillis) },
                sessionID: sessionID, now: now)
        } catch let error as StoreError {
            throw AppError(error)
        }
        observeResumed(states)
        var resumed: [LeaseToken] = []
        var rejected: [LeaseToken] = []
        for state in states {
            if state.valid, let expiry = state.expiresAt {
                let previous = registry.addResumed(.init(
                    token: state.lease, executorID: executor.executorID, sessionID: sessionID,
                    ttlMillis: configuration.leaseTTLMillis, lastHeartbeat: now, databaseExpiry: expiry))
                // Another stream of this executor id still had it: two processes configured with
                // one id. The old holder learns at once rather than when its report is refused.
                previous?.revoke(
                    state.lease, "lease resumed by another stream of executor \(executor.executorID): "
                        + "two processes share this executor id; give each its own")
                resumed.append(state.lease)
            } else {
                rejected.append(state.lease)
            }
        }
        return (resumed, rejected)
    }

    /// How long a lease stream waits before claiming again after the database was unavailable.
    static let claimRetryPause: Duration = .seconds(1)

    private func dispatchLoop(
        executor: ExecutorIdentity, sessionID: String, outbox: SessionOutbox, pipeline: ReportPipeline, silence: SessionSilence,
        claimDue: SessionClaimDue, draining: SessionDraining
    ) async throws {
        defer { signals.forgetNudges(sessionID) }
        while !Task.isCancelled {
            if isShuttingDown { throw ServerShuttingDown() }
            if let failure = outbox.failure { throw failure }
            // A stream holding leases is judged by them (the keeper lapses them and then stops the
            // stream, revocations first; unary heartbeats may keep them alive); an idle one here.
            if silence.stopped.load(ordering: .acquiring)
                || (silence.isQuiet(now: clock.now(), configuration: configuration) && registry.count(session: sessionID) == 0)
            {
                // A silent stream keeps its free slots; without this it would be handed the very
                // retries of the leases it let lapse, burning their attempts while live executors wait.
                // "Any": an idle stream is closed too, holding nothing (it said "its leases lapsed").
                throw AppError.unavailable(
                    "executor \(executor.executorID) stopped heartbeating; any leases it held lapsed. Reconnect and resume, "
                        + "and heartbeat at least every heartbeat_interval_ms even while idle")
            }
            if outbox.stalledFor > configuration.stalledSendLimit {
                throw AppError.resourceExhausted(
                    "executor \(executor.executorID) stopped reading its lease stream; its leases were released")
            }
            let generation = signals.generation(.tasksReady)
            if executor.credentialsExpired(clock) {
                // An expired credential is handed no new work (tasks carry the tenant's inputs);
                // what the stream holds may still be reported, and once it holds nothing it ends
                // (found by black-box testing: new tasks kept arriving on an expired token's stream).
                if registry.count(session: sessionID) == 0 {
                    throw AppError.unauthenticated(
                        "token expired at \((executor.credentialsExpireAt ?? 0) / 1000) (with the allowed clock skew) while this "
                            + "stream was open; it was handed no new task since and holds none now: open a new one with a fresh token")
                }
                await signals.wait(.tasksReady, after: generation, timeout: configuration.idleRecheck, nudgeKey: sessionID)
                continue
            }
            if draining.requested.load(ordering: .acquiring) {
                // No more work for this stream; the checks above still end it when they must.
                await signals.wait(.tasksReady, after: generation, timeout: configuration.idleRecheck, nudgeKey: sessionID)
                continue
            }
            // Don't hand out more work while earlier assignments are still stuck in flow control.
            // The free slots are reserved while the claim runs: direct dispatch (a new workflow's
            // tasks handed to idle sessions as it is stored) must not fill them meanwhile.
            let free = outbox.pendingAssignments == 0 ? registry.reserveFree(session: sessionID, capacity: executor.maxInFlight) : 0
            // Reserved (or nothing free): direct dispatch may look at the stream again.
            claimDue.due.store(false, ordering: .releasing)
            if free > 0 {
                let claimed: [ClaimedTask]
                do {
                    claimed = try await claim(for: executor, sessionID: sessionID, limit: free)
                } catch AppError.storageUnavailable(let reason) {
                    // The database is out: the stream stays, its leases with it (heartbeats are
                    // answered from memory, reports acked UNAVAILABLE to be sent again), and the
                    // claim is tried again. Ending the stream gave its leases back, attempts spent,
                    // so the work in flight ran twice after every outage longer than a claim's
                    // connection retries (found by black-box testing).
                    registry.unreserve(session: sessionID, count: free)
                    if let suppressed = outageLogs.admit("claim failed") {
                        logger.warning("claim failed; the database is unavailable, retrying", metadata: [
                            "executor_id": "\(executor.executorID)", "error": "\(reason)", "suppressed": "\(suppressed)",
                        ])
                    }
                    await signals.wait(.tasksReady, after: signals.generation(.tasksReady), timeout: Self.claimRetryPause)
                    continue
                } catch {
                    registry.unreserve(session: sessionID, count: free)
                    throw error
                }
                registry.unreserve(session: sessionID, count: free)
                try await sendAfterTheirReportsAcks(claimed, outbox: outbox, pipeline: pipeline)
                if claimed.count == free { continue }
            } else if outbox.pendingAssignments > 0 {
                // Held back: look again as soon as the transport takes them (at once, unless flow
                // control holds them; then the stall check above runs at this interval).
                await outbox.waitUntilAssignmentsWritten(timeout: .milliseconds(200))
                continue
            }
            // Everything ready was claimed, or every slot is held: wait for a change (one since
            // `generation`, read before the claim, returns at once).
            await signals.wait(.tasksReady, after: generation, timeout: configuration.idleRecheck, nudgeKey: sessionID)
        }
    }

    /// Queues the claimed tasks, each after the ack of any report on this stream that may have
    /// made it ready: the claim may run between a completion's commit (its NOTIFY woke the
    /// dispatch loop) and its ack, and executors that wait for the ack saw the next task first (a
    /// CI run). Such a report was admitted before the claim returned; the others (tasks ready
    /// anyway) go out at once, in claim order.
    private func sendAfterTheirReportsAcks(_ claimed: [ClaimedTask], outbox: SessionOutbox, pipeline: ReportPipeline) async throws {
        let mark = pipeline.admissions
        let inFlight = pipeline.inFlightWorkflows(before: mark)
        var held: [ClaimedTask] = []
        for task in claimed {
            let mayWait = inFlight.unknown || inFlight.workflows.contains(task.task.workflowID)
            if !mayWait || pipeline.answered(before: mark, unblocking: task) {
                try outbox.enqueue(.assignment(task))
            } else {
                held.append(task)
            }
        }
        for task in held {
            await pipeline.waitUntilAnswered(before: mark, unblocking: task)
            try outbox.enqueue(.assignment(task))
        }
    }

    private func inboundLoop<Inbound: AsyncSequence>(
        _ inbound: Inbound, executor: ExecutorIdentity, sessionID: String, outbox: SessionOutbox, pipeline: ReportPipeline,
        draining: SessionDraining, silence: SessionSilence
    ) async throws where Inbound.Element == SessionInput {
        // Reports wait for admission in a task of their own (`PendingReports`), so the messages
        // behind them — heartbeats above all — are handled meanwhile.
        let pending = PendingReports(limit: 2 * executor.maxInFlight)
        // The group ends only when every report read is stored, so leases are released after.
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask {
                await self.admitReports(pending, executor: executor, sessionID: sessionID, outbox: outbox, pipeline: pipeline)
            }
            defer { pending.finish() }
            for try await message in inbound {
                silence.lastHeard.store(clock.now(), ordering: .relaxed)
                switch message {
                case .heartbeat(let tokens):
                    let now = clock.now()
                    let (held, unknown) = registry.heartbeat(session: sessionID, tokens: tokens, now: now)
                    var states = held.map { LeaseState(lease: $0.token, valid: true, expiresAt: max($0.databaseExpiry, now + $0.ttlMillis)) }
                    states += unknown.map { LeaseState(lease: $0, valid: false, expiresAt: nil) }
                    try outbox.enqueue(.heartbeatAck(states))
                case .invalidReport(let reason):
                    try outbox.enqueue(.invalidReportAck(reason))
                case .drain:
                    // Read before the reports behind it: a completion after `drain` frees a slot
                    // that is then left empty, not handed a task the executor would abandon.
                    draining.requested.store(true, ordering: .releasing)
                    signals.nudge(sessionID)
                case .report(let lease, let outcome):
                    // Sent is sent: a completion waiting behind a failure that ends the workflow
                    // (fail_fast) is not revoked for that end — its ack says whether it counted,
                    // as for one already being applied (it got a revocation and a refused ack;
                    // found by black-box testing). Cleared once the report is applied, or refused admission.
                    if case .progress = outcome {} else { registry.setFinalReportInFlight(lease, true, session: sessionID) }
                    await pending.push(PendingReports.Report(lease: lease, outcome: outcome))
                }
            }
        }
    }

    /// Admits the stream's reports in the order they were read and applies each in a task of its
    /// own, up to the pipeline's limit at once (a failure alone); returns once all are applied.
    private func admitReports(
        _ pending: PendingReports, executor: ExecutorIdentity, sessionID: String, outbox: SessionOutbox, pipeline: ReportPipeline
    ) async {
        await withDiscardingTaskGroup { group in
            while let report = await pending.next() {
                let lease = report.lease
                let outcome = report.outcome
                let isFailure: Bool = if case .failed = outcome { true } else { false }
                let isFinal: Bool = if case .progress = outcome { false } else { true }
                guard await pipeline.admit(lease, exclusively: isFailure, subject: registry.reportSubject(lease)) else {
                    if isFinal { registry.setFinalReportInFlight(lease, false, session: sessionID) }
                    continue
                }
                group.addTask {
                    defer {
                        pipeline.finish(lease)
                        if isFinal { self.registry.setFinalReportInFlight(lease, false, session: sessionID) }
                    }
                    do {
                        let result = try await self.report(
                            lease, executorID: executor.executorID, outcome: outcome, tenants: executor.tenants, sessionID: sessionID)
                        try? outbox.enqueue(.ack(lease, result))
                    } catch {
                        // Answered, like every report: the executor learns it was not applied
                        // (UNAVAILABLE while the database is down: send it again) and the
                        // stream goes on. Silently dropped, the task stayed leased to it forever.
                        let unavailable: Bool = if case .storageUnavailable? = error as? AppError { true } else { false }
                        if let suppressed = unavailable ? self.outageLogs.admit("report not applied") : 0 {
                            self.logger.warning("report not applied", metadata: [
                                "executor_id": "\(executor.executorID)", "task_id": "\(lease.taskID)", "error": "\(error)",
                                "suppressed": "\(suppressed)",
                            ])
                        }
                        try? outbox.enqueue(.reportFailedAck(lease, error))
                    }
                }
            }
        }
    }
}

/// Set by the lease keeper when one of the session's leases lapsed for want of heartbeats.
final class SessionSilence: Sendable {
    let stopped = Atomic<Bool>(false)
    /// When the executor last sent anything (a heartbeat, a report, a drain), or the stream opened.
    let lastHeard: Atomic<Int64>

    init(openedAt: UnixMillis) { lastHeard = Atomic(openedAt) }

    /// Quiet for the longer of a lease TTL and two heartbeat intervals: the stream is closed, idle
    /// or not (EXECUTORS.md step 4), and is handed nothing meanwhile. Only a stream that held
    /// leases was: a wedged executor with nothing in hand stayed "idle" and was handed task after
    /// task, each lapsing a TTL later, until their attempts ran out (found by black-box testing).
    func isQuiet(now: UnixMillis, configuration: DispatchConfiguration) -> Bool {
        now - lastHeard.load(ordering: .relaxed)
            >= max(configuration.leaseTTLMillis, 2 * DispatchConfiguration.millis(configuration.heartbeatInterval))
    }
}

/// Set when one of the session's leases is revoked, until its dispatch loop has reserved the
/// freed slot for a claim: direct dispatch must not fill it first.
final class SessionClaimDue: Sendable {
    let due = Atomic<Bool>(false)
}

/// Set when the executor asked for no more work on this stream (`drain`).
final class SessionDraining: Sendable {
    let requested = Atomic<Bool>(false)
}

/// Set once the welcome is queued: direct dispatch must not queue an assignment ahead of it (the
/// session is registered before its resumed leases are checked in the database).
final class SessionWelcomed: Sendable {
    let sent = Atomic<Bool>(false)
}

/// Ends lease sessions when the server begins a graceful shutdown.
struct ServerShuttingDown: Error {}
