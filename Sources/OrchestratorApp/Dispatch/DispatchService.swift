import Logging
import OrchestratorTracing
import Synchronization

/// Hands ready tasks to executors and keeps their leases: stream sessions (`runSession`),
/// unary polling and reports, the lease keeper (batched expiry updates) and the reaper
/// (requeues expired leases; safe with several servers on one database, since the store claims
/// and expires with row locks).
public final class DispatchService: Sendable {
    let store: any TaskDispatchStore
    let signals: ChangeSignals
    let clock: any WallClock
    let ids: any IdentifierGenerator
    let configuration: DispatchConfiguration
    let logger: Logger
    let registry = LeaseRegistry()
    let metrics: DispatchMetrics
    let traces = DispatchTraces()
    /// Warnings that repeat for as long as the database is out: once, then every 30 s.
    let outageLogs = LogThrottle()
    private let shuttingDown = Mutex(false)
    /// Delegated planning: reviews planning tasks' answers before their completion is stored and
    /// adopts them after. Nil = planning answers are ordinary results.
    let planAdoption: PlanAdoptionService?

    public init(
        store: any TaskDispatchStore, signals: ChangeSignals, configuration: DispatchConfiguration = DispatchConfiguration(),
        clock: any WallClock = SystemWallClock(), ids: any IdentifierGenerator = RandomIdentifierGenerator(),
        logger: Logger = Logger(label: "orchestrator.dispatch"), planAdoption: PlanAdoptionService? = nil,
        metrics: DispatchMetrics = .disabled
    ) {
        self.planAdoption = planAdoption
        self.metrics = metrics
        self.store = store
        self.signals = signals
        self.configuration = configuration
        self.clock = clock
        self.ids = ids
        self.logger = logger
    }

    /// Runs the lease keeper and the reaper until the returned task is cancelled.
    public func runBackgroundLoops() -> Task<Void, Never> {
        Task { [self] in
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await self.keeperLoop() }
                group.addTask { await self.reaperLoop() }
            }
        }
    }

    /// Ends every lease stream promptly with UNAVAILABLE, without giving their leases back: the
    /// executors keep working, reconnect, and resume their leases (the database keeps them until
    /// their TTL). Called when the server starts draining.
    public func beginShutdown() {
        shuttingDown.withLock { $0 = true }
        signals.signal(.tasksReady)
    }

    var isShuttingDown: Bool { shuttingDown.withLock { $0 } }

    /// Leases held by this process's executors right now.
    public var liveLeaseCount: Int { registry.totalLeases }
    /// Lease streams open on this process.
    public var sessionCount: Int { registry.sessionCount }
    /// The lease streams open on this process, by executor id then session.
    public var executorSessions: [ExecutorSession] {
        registry.sessionSnapshots().sorted { ($0.executor.executorID, $0.sessionID) < ($1.executor.executorID, $1.sessionID) }
    }

    // MARK: Unary API for executors that cannot hold a stream.

    /// Claims up to `maxTasks` tasks, waiting up to `wait` (capped) for one to become ready.
    public func poll(_ executor: ExecutorIdentity, maxTasks: Int, wait: Duration) async throws -> [ClaimedTask] {
        let limit = min(max(maxTasks, 1), configuration.maxInFlightLimit)
        let deadline = ContinuousClock.now + min(wait, configuration.maxPollWait)
        let sessionID = LeaseRegistry.pollSessionPrefix + executor.executorID
        while true {
            let generation = signals.generation(.tasksReady)
            let claimed = try await claim(for: executor, sessionID: sessionID, limit: limit)
            if !claimed.isEmpty {
                // The caller went away (its deadline, a cancellation) while the claim ran: nobody
                // will read these, and they would sit leased to nobody until their TTL.
                if Task.isCancelled {
                    await returnUnsent(
                        claimed, executorID: executor.executorID, reason: "returned unsent: the PollTasks call ended during the claim")
                    return []
                }
                let (sent, unsent) = splitForOneResponse(claimed)
                await returnUnsent(
                    unsent, executorID: executor.executorID,
                    reason: "returned unsent: no room left in the PollTasks response "
                        + "(max-assignment-size \(configuration.maxAssignmentBytes ?? 0) bytes for all its assignments together)")
                // Returned in the response: handed over as far as dispatch can tell.
                for task in sent { task.dispatchSpan?.end() }
                return sent
            }
            let left = deadline - ContinuousClock.now
            // A long poll ends at once when the server begins shutting down: the executor polls
            // again (after a restart, or on another server) instead of waiting out the grace period.
            if left <= .zero || Task.isCancelled || isShuttingDown || signals.isShuttingDown { return [] }
            await signals.wait(.tasksReady, after: generation, timeout: min(left, configuration.idleRecheck))
        }
    }

    /// Applies a report (stream or unary) and keeps the in-memory lease table in step.
    /// - Parameter tenants: the tenants the reporter serves (nil: all); a refused report on a
    ///   task of another tenant is answered `unknownTask`, so the answer tells nothing of it.
    /// - Parameter sessionID: the Lease stream the report came on; nil for the unary ReportStatus.
    public func report(
        _ lease: LeaseToken, executorID: String, outcome reported: TaskReport.Outcome, tenants: Set<String>?,
        failureSource: TaskFailureInfo.Source = .executor, sessionID: String? = nil
    ) async throws -> ReportResult {
        // The fencing token cannot tell two streams of one executor id apart: both hold the same
        // token after a takeover. The lease table knows which stream holds the lease now.
        if let sessionID, let holder = registry.heldByAnotherStream(lease, executorID: executorID, from: sessionID) {
            let result: ReportResult = holder.resumed ? .heldByAnotherStream : .assignedToAnotherStream
            observeReport(lease, executorID: executorID, outcome: reported, result: result)
            return result
        }
        var outcome = reported
        var plan: PlanningTask?
        let result: ReportResult
        let isFinal: Bool
        if case .progress = reported { isFinal = false } else { isFinal = true }
        if isFinal { registry.setFinalReportInFlight(lease, true) }
        // Still held after the report (refused, or not applied): revocations reach it again.
        defer { if isFinal { registry.setFinalReportInFlight(lease, false) } }
        do {
            // Only a planning task's completion proposes a graph; the session knows the keys of
            // the tasks it handed out, which spares every other completion a database read.
            if case .completed(let bytes) = reported, let planAdoption, registry.mayProposeGraph(lease) != false {
                // Reads in this task: kept from a cancellation like the report itself (below).
                switch try await Self.evenIfCancelled({ try await planAdoption.review(taskID: lease.taskID, result: bytes) }) {
                case .ordinary: break
                case .adoptable(let task): plan = task
                case .rejected(let message):
                    // Not retryable: asking the same planner again is the workflow policy's call, not ours.
                    outcome = .failed(message: message, code: "invalid_plan", retryable: false)
                }
            }
            let report = TaskReport(
                lease: lease, executorID: executorID, outcome: outcome, jitterSample: Double.random(in: 0..<1), now: clock.now(),
                failureSource: failureSource)
            result = try await traceReport(lease, outcome: outcome) { [store] in
                if case .completed = outcome {
                    // Applied by a group-commit batch, in a task of its own: a cancelled caller
                    // still gets its answer, so the report is never dropped half-way.
                    return try await store.report(report)
                }
                // A failure or progress report has a transaction of its own, in this task, which
                // is cancelled when the executor closes its stream right after sending it; the
                // report it sent must be applied all the same (a failure reported as not
                // retryable would otherwise lapse into a retry).
                return try await Self.evenIfCancelled { try await store.report(report) }
            }
        } catch let error as StoreError {
            throw AppError(error)
        }
        let workflowID = registry.workflowOf(lease)
        let taskKey = registry.keyOf(lease)
        switch (result, outcome) {
        case (.accepted, .progress):
            _ = registry.heartbeat(session: registry.sessionOf(lease) ?? "", tokens: [lease], now: clock.now())
        case (.accepted(let state, let workflowState), _):
            registry.removeReported(lease)
            traces.forget(lease)
            if let workflowID, workflowState == .failed || workflowState == .cancelled {
                // fail_fast cancelled the workflow's other tasks in this report's transaction:
                // their executors here are told now (others' servers tell theirs at their keeper's
                // next round, when the lease is found no longer held).
                registry.revokeWorkflow(
                    workflowID,
                    reason: "task cancelled: workflow \(workflowID) \(workflowState.map { "\($0)" } ?? "ended") after task "
                        + "\(taskKey.map { "\($0) (\(lease.taskID))" } ?? lease.taskID) failed")
            }
            if state == .succeeded, let plan, let planAdoption {
                await planAdoption.adoptCompleted(plan)
            }
            // A free slot, and possibly newly ready children (or adopted tasks).
            signals.signal(.tasksReady)
        case (.heldByAnotherStream, _), (.assignedToAnotherStream, _):
            // Not reached (answered above); the lease stays with the stream that holds it.
            break
        case (.staleLease, _), (.unknownTask, _), (.alreadyCompleted, _):
            // Only the reporter's own lease: a refused report by someone else (a guessed token)
            // must not take a live lease out of the table, where the keeper extends it.
            if registry.remove(lease, ownedBy: executorID) { traces.forget(lease) }
        }
        observeReport(lease, executorID: executorID, outcome: outcome, result: result)
        if case .staleLease(_, _, let tenant) = result, let tenants, !tenants.contains(where: { $0.hasSameBytes(as: tenant) }) {
            return .unknownTask
        }
        return result
    }

    /// Unary heartbeat: extends the given leases now and reports their state.
    public func heartbeat(executorID: String, leases: [LeaseToken]) async throws -> [LeaseState] {
        let now = clock.now()
        registry.heartbeat(executorID: executorID, tokens: leases, now: now)
        let extensions = leases.map {
            LeaseExtension(lease: $0, executorID: executorID, until: now + (registry.ttlMillis(of: $0) ?? configuration.leaseTTLMillis))
        }
        let states: [LeaseState]
        do {
            states = try await store.extendLeases(extensions)
        } catch let error as StoreError {
            throw AppError(error)
        }
        for state in states {
            if state.valid, let expiry = state.expiresAt {
                registry.updateExpiry(state.lease, to: expiry)
            } else {
                // The caller's own lease only: a heartbeat with someone else's (guessed) token is
                // answered "not valid" and must leave the holder's live lease in place. A stream
                // holding it is told, as the keeper would tell it: it was dropped silently, its slot
                // refilled, and an executor mixing the stream with unary heartbeats never heard on
                // the stream that a cancel through another server ended the task (found by
                // black-box testing).
                registry.revoke(state.lease, ownedBy: executorID, reason: "lease no longer held")
            }
        }
        return states
    }

    /// Tells the executors holding these leases to stop (workflow cancelled, task removed).
    public func revoke(_ leases: [LeaseToken], reason: String) {
        for lease in leases { registry.revoke(lease, reason: reason) }
    }

    // MARK: Shared by sessions and polling.

    func claim(for executor: ExecutorIdentity, sessionID: String, limit: Int) async throws -> [ClaimedTask] {
        let now = clock.now()
        let claimStarted = TracingSystem.tracer.nowUnixNanos
        var claimed: [ClaimedTask]
        do {
            claimed = try await untraced {
                try await store.claimTasks(ClaimRequest(
                    executorID: executor.executorID, capabilities: executor.capabilities, tenants: executor.tenants,
                    limit: limit, leaseTTLMillis: configuration.leaseTTLMillis, now: now))
            }
        } catch let error as StoreError {
            throw AppError(error)
        }
        claimed = traceDispatch(
            claimed, executor: executor, sessionID: sessionID, claimStarted: claimStarted, claimEnded: TracingSystem.tracer.nowUnixNanos)
        registry.add(liveLeases(claimed, executorID: executor.executorID, sessionID: sessionID, leasedAt: now))
        observeClaims(claimed, executorID: executor.executorID, now: now)
        return await failingOversized(claimed, executorID: executor.executorID)
    }

    /// Fails, not retryable, the just-leased tasks whose assignment would exceed
    /// `maxAssignmentBytes` (their executor would refuse the message and the lease would lapse
    /// until the attempts ran out, as "lease expired"), and returns the others.
    func failingOversized(_ claimed: [ClaimedTask], executorID: String) async -> [ClaimedTask] {
        guard let limit = configuration.maxAssignmentBytes else { return claimed }
        // The exact size costs an encoding: only for tasks whose carried bytes come near the limit.
        let suspect = limit - min(limit / 2, 256 * 1024)
        guard claimed.contains(where: { $0.assignmentBytesLowerBound > suspect }) else { return claimed }
        var fitting: [ClaimedTask] = []
        for task in claimed {
            let size = task.assignmentBytesLowerBound > suspect ? configuration.assignmentSize(task) : 0
            // The message carrying it (a stream's LeaseResponse, a PollTasksResponse) adds its field's tag and length.
            guard size + Self.fieldEnvelopeBytes(size) > limit else {
                fitting.append(task)
                continue
            }
            let carried = task.upstreamResults.values.reduce(0) { $0 + $1.count }
            let inputs = task.inputs.reduce(0) { $0 + $1.key.utf8.count + $1.value.utf8.count }
            let message = "its assignment would be \(size) bytes (upstream results \(carried) bytes, its input "
                + "\(task.task.payload.count) bytes, the query's inputs \(inputs) bytes), over the "
                + "\(limit) bytes sent to executors (max-assignment-size; gRPC clients accept 4 MiB by default): "
                + "keep task results small (store large outputs elsewhere and pass a reference), or raise both limits"
            logger.warning("assignment too large; task failed", metadata: [
                "task_id": "\(task.lease.taskID)", "workflow_id": "\(task.task.workflowID)", "bytes": "\(size)", "limit": "\(limit)",
            ])
            task.dispatchSpan?.end()
            do {
                _ = try await Self.evenIfCancelled { [self] in
                    try await report(
                        task.lease, executorID: executorID, outcome: .failed(message: message, code: "assignment_too_large", retryable: false),
                        tenants: nil, failureSource: .dispatch)
                }
            } catch {
                // Not handed over either way: the lease lapses and the next attempt meets the same check.
                logger.warning("could not fail an oversized assignment", metadata: ["task_id": "\(task.lease.taskID)", "error": "\(error)"])
            }
        }
        return fitting
    }

    /// The lease table's entries for leases granted at `leasedAt`.
    func liveLeases(_ claimed: [ClaimedTask], executorID: String, sessionID: String, leasedAt now: UnixMillis) -> [LeaseRegistry.LiveLease] {
        // A lease's TTL runs from its hand-over, not from the start of the claim: when the
        // database is slow (a claim taking longer than the TTL), counting from the start made the
        // keeper lapse every new lease at once and end the healthy executor's session as silent.
        // The keeper extends the database expiry (stamped from `now`) on its next tick.
        let handedOver = clock.now()
        return claimed.map { task in
            LeaseRegistry.LiveLease(
                token: task.lease, executorID: executorID, sessionID: sessionID,
                ttlMillis: max(1, task.leaseExpiresAt - now), lastHeartbeat: handedOver, databaseExpiry: task.leaseExpiresAt,
                mayProposeGraph: planAdoption.map { task.task.spec.key == $0.generatorKey } ?? false, workflowID: task.task.workflowID,
                taskKey: task.task.spec.key.rawValue)
        }
    }

    /// Tells the executors here of a workflow's other tasks when a lost lease used up its task's
    /// attempts and fail_fast cancelled them in the same transaction, naming the task, as a
    /// failure report does; they used to learn it at the keeper's next round as "lease no longer
    /// held" (found by black-box testing).
    func revokeSiblings(of lost: [ExpiredLease]) {
        for lease in lost where lease.workflowState == .failed || lease.workflowState == .cancelled {
            registry.revokeWorkflow(
                lease.workflowID,
                reason: "task cancelled: workflow \(lease.workflowID) \(lease.workflowState.map { "\($0)" } ?? "ended") after task "
                    + "\(lease.taskKey.map { "\($0) (\(lease.lease.taskID))" } ?? lease.lease.taskID) failed "
                    + "(\(lease.cause == .timeout ? "start_to_close timeout" : "lease lost"), attempts exhausted)")
        }
    }

    func releaseAll(of sessionID: String, executorID: String, reason: String) async {
        let held = registry.removeSession(sessionID)
        guard !held.isEmpty else { return }
        do {
            let released = try await Self.evenIfCancelled { [store, clock] in
                try await store.releaseLeases(held.map(\.token), executorID: executorID, sessionID: sessionID,
                    reason: reason, now: clock.now())
            }
            observeReleased(released)
            revokeSiblings(of: released)
            logger.info("leases released", metadata: ["executor_id": "\(executorID)", "count": "\(released.count)", "reason": "\(reason)"])
            signals.signal(.tasksReady)
        } catch {
            // The reaper requeues them when their database expiry passes.
            logger.warning("could not release leases; they will lapse", metadata: ["executor_id": "\(executorID)", "error": "\(error)"])
        }
    }

    /// Runs `work` to its end even when the calling task has been cancelled. Giving back what an
    /// ended stream held is cleanup, and its task is usually cancelled by then: an executor that
    /// closes its connection right after its stream (any process that exits) cancels the stream's
    /// handler, and the store refuses to start work for a cancelled task, so the leases stayed
    /// held until their TTL ran out. An unstructured task does not inherit the cancellation (it
    /// does inherit task-local values, such as the audit cause).
    static func evenIfCancelled<T: Sendable>(_ work: @escaping @Sendable () async throws -> T) async throws -> T {
        try await Task { try await work() }.value
    }

    // MARK: Background loops.

    func keeperLoop() async {
        var lastRound = ContinuousClock.now
        var pause = configuration.keeperInterval
        while !Task.isCancelled {
            // Short steps: a lease with a short TTL handed out meanwhile brings the next round
            // forward, before its database expiry (set by the claim) can pass.
            try? await Task.sleep(for: min(pause, Self.keeperStep))
            if Task.isCancelled { return }
            if let added = registry.takeShortestAddedTTL() {
                pause = min(pause, LeaseRegistry.keeperPause(interval: configuration.keeperInterval, shortestTTLMillis: added))
            }
            guard ContinuousClock.now - lastRound >= pause else { continue }
            lastRound = ContinuousClock.now
            let now = clock.now()
            let work = registry.keeperWork(now: now)
            pause = LeaseRegistry.keeperPause(interval: configuration.keeperInterval, shortestTTLMillis: work.shortestTTLMillis)
            let lapsed = await notKeptAliveElsewhere(work.lapsed, now: now)
            let settled = await settleLapsed(lapsed, now: now)
            // Each lapsed lease first, judging its stream's silence; then the siblings fail_fast
            // cancelled. The other way round, a lapse that used up the task's last attempt and
            // failed its workflow was revoked as a sibling, and its silent stream stayed open,
            // holding nothing, never told why (found by black-box testing).
            for lease in lapsed {
                registry.lapseOrRevoke(
                    lease.token, reason: "lease lapsed: no heartbeat for \(lease.ttlMillis) ms", now: now,
                    heartbeatIntervalMillis: DispatchConfiguration.millis(configuration.heartbeatInterval))
            }
            revokeSiblings(of: settled)
            guard !work.extend.isEmpty else { continue }
            do {
                let states = try await store.extendLeases(work.extend.map {
                    // A lease lives one TTL past the executor's last sign of life, never longer.
                    LeaseExtension(lease: $0.token, executorID: $0.executorID, until: $0.lastHeartbeat + $0.ttlMillis)
                })
                for state in states {
                    if state.valid, let expiry = state.expiresAt {
                        registry.updateExpiry(state.lease, to: expiry)
                    } else {
                        // Expired by a reaper (this server's or another's) since the round began,
                        // or ended elsewhere: the stream is told it went silent when it did, as
                        // the reaper's own revocation would (which may then find the lease gone here).
                        registry.lapseOrRevoke(
                            state.lease, reason: "lease no longer held", now: now,
                            heartbeatIntervalMillis: DispatchConfiguration.millis(configuration.heartbeatInterval))
                    }
                }
            } catch {
                // Every round (about once a second) fails while the database is out: throttled as
                // the other outage warnings are (found by black-box testing: 27 lines in 33 s).
                if let suppressed = outageLogs.admit("lease keeper could not extend leases") {
                    logger.warning("lease keeper could not extend leases", metadata: [
                        "count": "\(work.extend.count)", "error": "\(error)", "suppressed": "\(suppressed)",
                    ])
                }
            }
        }
    }

    /// Of the leases this server saw lapse, those whose database expiry is still ahead: another
    /// server behind the same database extended them (a unary Heartbeat through it — behind a
    /// load balancer an executor's calls reach any server), which this server's registry, judging
    /// the silence, never heard. They were lapsed, the task ran again and the holder's report was
    /// refused as stale (found by black-box testing). They stay, with their last sign of life
    /// taken from the database; the rest are returned. Asked with `extendLeases` to each lease's
    /// own last heartbeat, which moves no expiry. If the database cannot answer, all are
    /// returned: their settling fails the same way and the reaper sweeps them once they expire.
    /// A lease of a stream gone silent is returned too: its stream is closed as silent (the
    /// executor moved, and may have resumed the lease elsewhere: settling leaves that alone).
    private func notKeptAliveElsewhere(_ lapsed: [LeaseRegistry.LiveLease], now: UnixMillis) async -> [LeaseRegistry.LiveLease] {
        let interval = DispatchConfiguration.millis(configuration.heartbeatInterval)
        let candidates = lapsed.filter { !registry.holderIsSilentStream($0.token, now: now, heartbeatIntervalMillis: interval) }
        guard !candidates.isEmpty else { return lapsed }
        guard let states = try? await store.extendLeases(candidates.map {
            LeaseExtension(lease: $0.token, executorID: $0.executorID, until: $0.lastHeartbeat + $0.ttlMillis)
        }) else { return lapsed }
        var alive = Set<LeaseToken>()
        for state in states where state.valid {
            if let expiry = state.expiresAt, expiry > now, registry.heardElsewhere(state.lease, expiry: expiry) {
                alive.insert(state.lease)
            }
        }
        return lapsed.filter { !alive.contains($0.token) }
    }

    /// The executor and stream that hold a lease: lapsed leases are settled per holder, since
    /// another stream may have resumed some of them (through another server) in the meantime.
    private struct LeaseHolder: Hashable {
        var executorID: String
        var sessionID: String
    }

    /// How often the keeper checks, between rounds, for new leases that need an earlier round.
    static let keeperStep: Duration = .milliseconds(100)

    /// Requeues lapsed leases in the database before their holders are told (the revocation):
    /// a report sent after the revocation is then refused, as EXECUTORS.md promises, rather than
    /// accepted until the reaper's next sweep. If the database cannot be reached, the reaper
    /// settles them once their expiry passes. Returns what it settled.
    private func settleLapsed(_ lapsed: [LeaseRegistry.LiveLease], now: UnixMillis) async -> [ExpiredLease] {
        guard !lapsed.isEmpty else { return [] }
        var all: [ExpiredLease] = []
        for (holder, leases) in Dictionary(grouping: lapsed, by: { LeaseHolder(executorID: $0.executorID, sessionID: $0.sessionID) }) {
            let executorID = holder.executorID
            do {
                let settled = try await store.lapseLeases(
                    leases.map(\.token), executorID: executorID, sessionID: holder.sessionID,
                    reason: "lease lapsed: no heartbeat within its TTL", now: now)
                observeExpired(settled)
                all += settled
                if !settled.isEmpty { signals.signal(.tasksReady) }
            } catch {
                logger.warning("could not requeue lapsed leases; the reaper will", metadata: [
                    "executor_id": "\(executorID)", "count": "\(leases.count)", "error": "\(error)",
                ])
            }
        }
        return all
    }

    /// How long after a database outage the reaper spares leases whose expiry fell inside it
    /// (`ReaperOutage`): long enough for every live executor to heartbeat again (its interval) and for the keepers
    /// of every server on the database (each round a `keeperInterval`) to extend what they hold.
    var outageReprieve: Duration { configuration.heartbeatInterval + configuration.keeperInterval * 2 }

    func reaperLoop() async {
        var outage = ReaperOutage(slowSweep: configuration.slowSweep, reprieve: outageReprieve)
        // Found by black-box testing: a server restarted in less than a lease TTL reaped the
        // leases of work still running, two seconds after it started, while their executors were
        // still in their reconnect backoff; the work ran twice.
        let graceEnds = ContinuousClock.now + configuration.startupGrace
        if configuration.startupGrace > .zero {
            logger.info("expired leases are left alone for the start-up grace, for their executors to resume them",
                        metadata: ["grace_ms": "\(DispatchConfiguration.millis(configuration.startupGrace))"])
        }
        while !Task.isCancelled {
            try? await Task.sleep(for: configuration.reaperInterval)
            if Task.isCancelled { return }
            let sweepStarted = ContinuousClock.now
            let sweepStartedAt = clock.now()
            do {
                var expired: [ExpiredLease]
                repeat {
                    let now = clock.now()
                    // In the grace no lease (nor attempt past its deadline) is old enough to reap;
                    // retries whose backoff elapsed are still made ready.
                    let cutoff: UnixMillis = ContinuousClock.now < graceEnds ? 0 : outage.cutoff(now: now)
                    expired = try await store.expireLeases(now: now, expiredBefore: cutoff, limit: 1000)
                    observeExpired(expired)
                    for lease in expired {
                        if lease.cause == .timeout {
                            registry.revoke(lease.lease, reason: "start_to_close timeout exceeded")
                        } else {
                            registry.revokeExpired(
                                lease.lease, reason: "lease expired", now: now,
                                heartbeatIntervalMillis: DispatchConfiguration.millis(configuration.heartbeatInterval))
                        }
                    }
                    revokeSiblings(of: expired)
                    if !expired.isEmpty {
                        // Requeued, or failed for good with their attempts spent: said apart (one
                        // line "requeued" after a task's last attempt timed out misled; found by
                        // black-box testing).
                        let failed = expired.filter { $0.newState == .failed }.count
                        logger.info("expired leases taken back", metadata: [
                            "count": "\(expired.count)", "requeued": "\(expired.count - failed)", "failed": "\(failed)",
                        ])
                        signals.signal(.tasksReady)
                    }
                } while expired.count == 1000 && !Task.isCancelled
                if let planAdoption, try await planAdoption.adoptStranded() > 0 {
                    signals.signal(.tasksReady)
                }
                for change in outage.sweepSucceeded(startedAt: sweepStartedAt, clock: sweepStarted, endedAt: clock.now()) {
                    switch change {
                    case .slowSweepTakenForOutage:
                        logger.warning("lease reaper's sweep took over \(configuration.slowSweep); treating it as a database outage")
                    case .reprieveBegan:
                        logger.notice("database reachable again; leases that ran out during the outage are spared while keepers extend them",
                                      metadata: ["reprieve_ms": "\(DispatchConfiguration.millis(outageReprieve))"])
                    case .ended:
                        break
                    }
                }
            } catch {
                var unavailable = false
                if case .unavailable? = error as? StoreError { unavailable = true }
                outage.sweepFailed(unavailable: unavailable, startedAt: sweepStartedAt)
                if let suppressed = unavailable ? outageLogs.admit("lease reaper failed") : 0 {
                    logger.warning("lease reaper failed", metadata: ["error": "\(error)", "suppressed": "\(suppressed)"])
                }
            }
        }
    }
}
