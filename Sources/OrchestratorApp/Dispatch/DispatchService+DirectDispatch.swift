import Logging
import OrchestratorDomain
import OrchestratorTracing

/// Direct dispatch ("sync match"): a new workflow's tasks without upstream tasks are stored
/// already leased to idle executor streams of this process and handed to them as soon as the
/// workflow's transaction commits, instead of being stored ready and then claimed.
///
/// Why: the claim is a transaction of its own between a task's readiness and its assignment
/// (about half of the ready→assignment latency under load in `tools/bench latency`). An idle
/// stream (free slots, nothing queued, heartbeats flowing) has by definition found nothing to
/// claim, so giving it the new work at once takes nothing from older ready tasks; when no stream
/// is idle, tasks are stored ready and claimed as before. The leases, attempts and events are the
/// ones a claim would have written (`PostgresWorkflowStore+DirectLeases`).
public protocol DirectDispatching: Sendable {
    /// Reserves idle slots for the DAG's tasks without upstream tasks; nil when none is free.
    /// `priority` is the workflow's (a task's own non-zero priority wins) and `ranks` the
    /// tasks' critical-path ranks: the tasks get slots, and reach their streams, in claim order.
    func reserveIdle(for dag: Dag, tenant: String, priority: Int, ranks: [TaskKey: Double]) -> DirectReservation?
    /// Hands the tasks stored leased to their streams and frees what was reserved.
    func deliver(_ reservation: DirectReservation, leased: [ClaimedTask]) async
    /// Frees the reservation of a workflow that was not stored.
    func cancel(_ reservation: DirectReservation)
}

/// Slots of idle executor streams promised to tasks of a workflow being stored.
public struct DirectReservation: Sendable {
    /// What to store (`NewWorkflow.directLeases`).
    public let leases: [TaskKey: DirectLease]
    let sessions: [TaskKey: (session: String, offer: LeaseRegistry.DirectOffer)]
    let startedUnixNanos: UInt64
    /// Positions of the reserved tasks in claim order.
    let positions: [TaskKey: Int]
}

extension DispatchService: DirectDispatching {
    public func reserveIdle(for dag: Dag, tenant: String, priority: Int, ranks: [TaskKey: Double]) -> DirectReservation? {
        guard !isShuttingDown, !dag.tasks.isEmpty else { return nil }
        let downstream = Set(dag.edges.map(\.to))
        // The claim's order (DispatchSQL.claim: priority, then rank; aging is the same for all
        // tasks of one submission), then the DAG's: with fewer free slots than roots, the first
        // tasks listed got them whatever their priority (found by black-box testing).
        let roots = dag.tasks.enumerated().filter { !downstream.contains($0.element.key) }.sorted { a, b in
            let (pa, pb) = (a.element.priority != 0 ? a.element.priority : priority, b.element.priority != 0 ? b.element.priority : priority)
            if pa != pb { return pa > pb }
            let (ra, rb) = (ranks[a.element.key] ?? 0, ranks[b.element.key] ?? 0)
            if ra != rb { return ra > rb }
            return a.offset < b.offset
        }.map(\.element)
        let chosen = registry.reserveIdle(for: roots.map { (key: $0.key, capabilities: $0.requiredCapabilities) }, tenant: tenant)
        guard !chosen.isEmpty else { return nil }
        var ownTTL: [TaskKey: Int64] = [:]
        for task in dag.tasks { if let ttl = task.leaseTTLMillis { ownTTL[task.key] = ttl } }
        var leases: [TaskKey: DirectLease] = [:]
        for (key, slot) in chosen {
            leases[key] = DirectLease(
                executorID: slot.offer.executor.executorID, leaseTTLMillis: ownTTL[key] ?? configuration.leaseTTLMillis,
                cause: slot.offer.cause)
        }
        var positions: [TaskKey: Int] = [:]
        for (position, task) in roots.enumerated() where chosen[task.key] != nil { positions[task.key] = position }
        return DirectReservation(
            leases: leases, sessions: chosen, startedUnixNanos: TracingSystem.tracer.nowUnixNanos, positions: positions)
    }

    public func deliver(_ reservation: DirectReservation, leased: [ClaimedTask]) async {
        let ended = TracingSystem.tracer.nowUnixNanos
        var bySession: [String: (offer: LeaseRegistry.DirectOffer, tasks: [ClaimedTask])] = [:]
        let ordered = leased.sorted { (reservation.positions[$0.task.spec.key] ?? .max) < (reservation.positions[$1.task.spec.key] ?? .max) }
        for task in ordered {
            guard let slot = reservation.sessions[task.task.spec.key] else { continue }
            bySession[slot.session, default: (slot.offer, [])].tasks.append(task)
        }
        for (session, group) in bySession {
            let executor = group.offer.executor
            let now = group.tasks[0].task.startedAt ?? clock.now()
            let traced = Tracer.$current.withValue(group.offer.streamSpan) {
                traceDispatch(
                    group.tasks, executor: executor, sessionID: session, claimStarted: reservation.startedUnixNanos,
                    claimEnded: ended, databaseWork: "db.create_workflow")
            }
            // Added only while the stream is registered: its end releases what it holds. A stream
            // that ended in the meantime gets nothing; its tasks are given back at once.
            if registry.add(liveLeases(traced, executorID: executor.executorID, sessionID: session, leasedAt: now), ifSessionLive: session) {
                observeClaims(traced, executorID: executor.executorID, now: now)
                metrics.tasksLeasedDirectly.increment(by: Double(traced.count))
                // A failing stream is ending: its end releases these leases with the rest.
                _ = group.offer.deliver(await failingOversized(traced, executorID: executor.executorID))
            } else {
                for task in traced { task.dispatchSpan?.end() }
                await giveBack(traced.map(\.lease), executorID: executor.executorID)
            }
        }
        cancel(reservation)
    }

    public func cancel(_ reservation: DirectReservation) {
        var counts: [String: Int] = [:]
        for slot in reservation.sessions.values { counts[slot.session, default: 0] += 1 }
        for (session, count) in counts { registry.unreserve(session: session, count: count) }
    }

    private func giveBack(_ leases: [LeaseToken], executorID: String) async {
        do {
            let released = try await Self.evenIfCancelled { [store, clock] in
                // Never sent, so never resumed elsewhere: no stream to check against.
                try await store.releaseLeases(
                    leases, executorID: executorID, sessionID: nil, reason: "executor stream ended before its assignment was sent",
                    now: clock.now())
            }
            observeReleased(released)
            signals.signal(.tasksReady)
        } catch {
            // The leases lapse after their TTL and the reaper requeues them.
            logger.warning("could not give back undelivered leases", metadata: ["count": "\(leases.count)", "error": "\(error)"])
        }
    }
}
