import OrchestratorDomain
import OrchestratorTracing
import Synchronization

/// The process's in-memory view of the leases its executors hold. Heartbeats only touch this
/// table; the lease keeper turns it into batched expiry updates in the database.
///
/// Thread-safety: all state behind `state`'s mutex.
final class LeaseRegistry: Sendable {
    struct LiveLease: Sendable {
        var token: LeaseToken
        var executorID: String
        var sessionID: String
        var ttlMillis: Int64
        /// When the lease was last heartbeated, or handed over (or resumed) until it is: the
        /// lease lapses one TTL after this.
        var lastHeartbeat: UnixMillis
        var databaseExpiry: UnixMillis
        /// When the executor last heartbeated this lease itself (by stream or unary call); nil
        /// until it does. The hand-over is no sign of the executor's life: counted as one, a
        /// stream that never heartbeated was judged alive when the reaper expired its lease a
        /// few milliseconds before one TTL after the hand-over (the database's expiry runs from
        /// the claim), and it stayed open, holding nothing, never told why (seen in CI).
        var heartbeatedAt: UnixMillis? = nil
        /// Whether the task may be a delegated planning task (its key is the planner's), whose
        /// completion proposes a graph; nil when unknown (a resumed lease).
        var mayProposeGraph: Bool? = nil
        /// The task's workflow; nil when unknown (a resumed lease).
        var workflowID: String? = nil
        /// The task's key, for messages; nil when unknown (a resumed lease).
        var taskKey: String? = nil
        /// Held through a `resume` of the stream's hello, not handed to it by an assignment: a
        /// report from another stream of the executor id is then refused as a takeover.
        var resumed = false
        /// A completion or failure of this lease is being applied (`DispatchService.report`): a
        /// workflow-wide revocation passes it by, since the executor learns that report's outcome
        /// from its ack. Without this, a report applied in the batch that finished the workflow
        /// could be revoked after it was accepted (seen by black-box testing).
        var finalReportInFlight = false
    }

    /// How a session is told about leases taken away from it.
    struct SessionHandle: Sendable {
        let revoke: @Sendable (LeaseToken, String) -> Void
        /// Called when one of the session's leases lapsed for want of heartbeats: the executor
        /// is frozen or partitioned, so its free slots must not be handed the retries.
        var heartbeatsStopped: @Sendable () -> Void = {}
        /// Called when a report freed one of the session's slots: it claims from the queue before
        /// direct dispatch may fill the slot with newer work.
        var slotFreed: @Sendable () -> Void = {}
        /// Whether the executor asked for no more work (`drain`), for what operators see.
        var isDraining: @Sendable () -> Bool = { false }
        /// How direct dispatch reaches the session (nil: it is never offered tasks that way).
        var offer: DirectOffer? = nil
    }

    /// A session's terms for tasks handed to it without a claim (`DispatchService+DirectDispatch`).
    struct DirectOffer: Sendable {
        let executor: ExecutorIdentity
        /// The executor stream's audit cause and span, for the leases' events and dispatch spans.
        let cause: AuditCause?
        let streamSpan: SpanContext?
        /// False while the session should not be handed more at once (assignments still queued
        /// behind flow control, heartbeats stopped).
        let isReady: @Sendable () -> Bool
        /// Queues assignments on the stream; false when the stream is failing.
        let deliver: @Sendable ([ClaimedTask]) -> Bool
    }

    private struct State {
        var leases: [String: LiveLease] = [:]          // by task id
        var sessions: [String: SessionHandle] = [:]
        var leaseCountBySession: [String: Int] = [:]
        /// When each stream last heartbeated, whatever leases it named (since it opened, until
        /// it does): a lease left out of an explicit heartbeat lapses, but the stream that keeps
        /// heartbeating is not silent.
        var lastHeardBySession: [String: UnixMillis] = [:]
        var openedAtBySession: [String: UnixMillis] = [:]
        /// The shortest TTL of the leases added since the keeper last looked.
        var shortestAddedTTL: Int64?
        /// Slots promised but not yet held: a session's claim in flight, direct dispatches being stored.
        var reservedBySession: [String: Int] = [:]
        /// Sessions that take direct dispatch, in a stable order (swap-removed), and where the
        /// next direct dispatch starts looking in it, so that idle sessions share new work and a
        /// submission looks at only as many sessions as it needs.
        var offerOrder: [String] = []
        var offerPosition: [String: Int] = [:]
        var offerCursor = 0
    }

    private let state = Mutex(State())

    func registerSession(_ id: String, handle: SessionHandle, openedAt: UnixMillis) {
        state.withLock { state in
            state.sessions[id] = handle
            state.lastHeardBySession[id] = openedAt
            state.openedAtBySession[id] = openedAt
            if handle.offer != nil, state.offerPosition[id] == nil {
                state.offerPosition[id] = state.offerOrder.count
                state.offerOrder.append(id)
            }
        }
    }

    /// Forgets the session and returns the leases it still held.
    func removeSession(_ id: String) -> [LiveLease] {
        state.withLock { state in
            state.sessions[id] = nil
            state.leaseCountBySession[id] = nil
            state.lastHeardBySession[id] = nil
            state.openedAtBySession[id] = nil
            state.reservedBySession[id] = nil
            if let position = state.offerPosition.removeValue(forKey: id) {
                let last = state.offerOrder.removeLast()
                if position < state.offerOrder.count {
                    state.offerOrder[position] = last
                    state.offerPosition[last] = position
                }
            }
            let held = state.leases.values.filter { $0.sessionID == id }
            for lease in held { state.leases[lease.token.taskID] = nil }
            return held
        }
    }

    func add(_ lease: LiveLease) {
        state.withLock { Self.insert(lease, into: &$0) }
    }

    func add(_ leases: [LiveLease]) {
        guard !leases.isEmpty else { return }
        state.withLock { state in
            for lease in leases { Self.insert(lease, into: &state) }
        }
    }

    /// Adds a lease a stream resumed; returns the session that held it here until now, when that
    /// is another stream still open (same executor id, another process or connection), so that it
    /// can be told the lease moved.
    func addResumed(_ lease: LiveLease) -> SessionHandle? {
        var lease = lease
        lease.resumed = true
        return state.withLock { state in
            let previous = state.leases[lease.token.taskID]
            Self.insert(lease, into: &state)
            guard let previous, previous.token == lease.token, previous.sessionID != lease.sessionID else { return nil }
            return state.sessions[previous.sessionID]
        }
    }

    /// Adds leases of one session only while it is registered (false: it ended, nothing added),
    /// so that its end, which releases what it holds, cannot miss them.
    func add(_ leases: [LiveLease], ifSessionLive session: String) -> Bool {
        state.withLock { state in
            guard state.sessions[session] != nil else { return false }
            for lease in leases { Self.insert(lease, into: &state) }
            return true
        }
    }

    private static func insert(_ lease: LiveLease, into state: inout State) {
        if let old = state.leases[lease.token.taskID] {
            state.leaseCountBySession[old.sessionID, default: 1] -= 1
        }
        state.leases[lease.token.taskID] = lease
        state.leaseCountBySession[lease.sessionID, default: 0] += 1
        state.shortestAddedTTL = min(state.shortestAddedTTL ?? lease.ttlMillis, lease.ttlMillis)
    }

    /// The shortest TTL among leases added since the last call (`keeperLoop` looks between rounds).
    func takeShortestAddedTTL() -> Int64? {
        state.withLock { state in
            defer { state.shortestAddedTTL = nil }
            return state.shortestAddedTTL
        }
    }

    /// Removes the lease if it is held with exactly this token; returns its session.
    @discardableResult
    func remove(_ token: LeaseToken) -> String? {
        state.withLock { state in
            guard let lease = state.leases[token.taskID], lease.token == token else { return nil }
            state.leases[token.taskID] = nil
            state.leaseCountBySession[lease.sessionID, default: 1] -= 1
            return lease.sessionID
        }
    }

    /// Removes a lease whose report was applied and tells its session that a slot is free.
    func removeReported(_ token: LeaseToken) {
        let handle = state.withLock { state -> SessionHandle? in
            guard let lease = state.leases[token.taskID], lease.token == token else { return nil }
            state.leases[token.taskID] = nil
            state.leaseCountBySession[lease.sessionID, default: 1] -= 1
            return state.sessions[lease.sessionID]
        }
        handle?.slotFreed()
    }

    /// Removes the lease when it is held here by `executorID`; whether it was.
    func remove(_ token: LeaseToken, ownedBy executorID: String) -> Bool {
        state.withLock { state in
            guard let lease = state.leases[token.taskID], lease.token == token, lease.executorID.hasSameBytes(as: executorID) else { return false }
            state.leases[token.taskID] = nil
            state.leaseCountBySession[lease.sessionID, default: 1] -= 1
            return true
        }
    }

    /// The session holding this exact lease, if any.
    func sessionOf(_ token: LeaseToken) -> String? {
        state.withLock { state in
            guard let lease = state.leases[token.taskID], lease.token == token else { return nil }
            return lease.sessionID
        }
    }

    /// The Lease stream other than `sessionID` through which `executorID` holds this exact
    /// lease, if any — another stream of the same executor id was assigned it, or resumed it (a
    /// takeover) — and whether it resumed it. Nil when the lease is held by another executor id
    /// (the store answers that report, naming neither the holder nor, across tenants, the
    /// task), by a PollTasks call of the same id, or not here.
    func heldByAnotherStream(_ token: LeaseToken, executorID: String, from sessionID: String) -> (sessionID: String, resumed: Bool)? {
        state.withLock { state in
            guard let lease = state.leases[token.taskID], lease.token == token, lease.executorID.hasSameBytes(as: executorID),
                lease.sessionID != sessionID, !lease.sessionID.hasPrefix(Self.pollSessionPrefix)
            else { return nil }
            return (lease.sessionID, lease.resumed)
        }
    }

    /// Session ids of PollTasks leases: `poll:` and the executor id.
    static let pollSessionPrefix = "poll:"

    /// `LiveLease.mayProposeGraph` of a held lease; nil when unknown or not held here.
    func mayProposeGraph(_ token: LeaseToken) -> Bool? {
        state.withLock { state in
            guard let lease = state.leases[token.taskID], lease.token == token else { return nil }
            return lease.mayProposeGraph
        }
    }

    func count(session: String) -> Int {
        state.withLock { $0.leaseCountBySession[session] ?? 0 }
    }

    /// Reserves every slot of the session not held or reserved yet (for its own claim) and
    /// returns how many; give them back with `unreserve` once the claimed leases are added.
    func reserveFree(session: String, capacity: Int) -> Int {
        state.withLock { state in
            let free = capacity - (state.leaseCountBySession[session] ?? 0) - (state.reservedBySession[session] ?? 0)
            guard free > 0 else { return 0 }
            state.reservedBySession[session, default: 0] += free
            return free
        }
    }

    func unreserve(session: String, count: Int) {
        guard count > 0 else { return }
        state.withLock { state in
            guard let reserved = state.reservedBySession[session] else { return }  // the session ended
            state.reservedBySession[session] = max(0, reserved - count)
        }
    }

    /// Reserves one slot for each task in an idle session that may run it (capabilities, tenant),
    /// going round the sessions so that new work is spread; returns the session of each task
    /// that got one. The caller adds the leases (or unreserves) when the tasks are stored.
    func reserveIdle(for tasks: [(key: TaskKey, capabilities: [String])], tenant: String) -> [TaskKey: (session: String, offer: DirectOffer)] {
        state.withLock { state in
            // Idle sessions from the cursor on, until their free slots cover the tasks: with
            // thousands of streams connected, a submission looks at a few, not all of them.
            var candidates: [(id: String, offer: DirectOffer, free: Int)] = []
            var slots = 0
            let count = state.offerOrder.count
            var scanned = 0
            while scanned < count && slots < tasks.count {
                let id = state.offerOrder[(state.offerCursor + scanned) % count]
                scanned += 1
                guard let offer = state.sessions[id]?.offer, offer.executor.tenants.map({ $0.contains(tenant) }) ?? true else { continue }
                let free = offer.executor.maxInFlight - (state.leaseCountBySession[id] ?? 0) - (state.reservedBySession[id] ?? 0)
                // Slots count only where at least one of the tasks can run.
                if free > 0 && offer.isReady()
                    && tasks.contains(where: { $0.capabilities.allSatisfy(offer.executor.capabilities.contains) })
                {
                    candidates.append((id, offer, free))
                    slots += free
                }
            }
            if count > 0 { state.offerCursor = (state.offerCursor + scanned) % count }
            guard !candidates.isEmpty else { return [:] }
            var chosen: [TaskKey: (session: String, offer: DirectOffer)] = [:]
            var cursor = 0
            for task in tasks {
                for step in 0..<candidates.count {
                    let index = (cursor + step) % candidates.count
                    let candidate = candidates[index]
                    guard candidate.free > 0, task.capabilities.allSatisfy(candidate.offer.executor.capabilities.contains) else { continue }
                    candidates[index].free -= 1
                    state.reservedBySession[candidate.id, default: 0] += 1
                    chosen[task.key] = (candidate.id, candidate.offer)
                    cursor = index + 1
                    break
                }
            }
            return chosen
        }
    }

    /// Records a heartbeat for the given leases of `session` (all of them when empty); returns
    /// the leases it touched and the ones it does not hold.
    func heartbeat(session: String, tokens: [LeaseToken], now: UnixMillis) -> (held: [LiveLease], unknown: [LeaseToken]) {
        state.withLock { state in
            var held: [LiveLease] = []
            var unknown: [LeaseToken] = []
            if state.sessions[session] != nil { state.lastHeardBySession[session] = now }
            if tokens.isEmpty {
                for (taskID, lease) in state.leases where lease.sessionID == session {
                    state.leases[taskID]?.lastHeartbeat = now
                    state.leases[taskID]?.heartbeatedAt = now
                    held.append(lease)
                }
            } else {
                for token in tokens {
                    if var lease = state.leases[token.taskID], lease.token == token, lease.sessionID == session {
                        lease.lastHeartbeat = now
                        lease.heartbeatedAt = now
                        state.leases[token.taskID] = lease
                        held.append(lease)
                    } else {
                        unknown.append(token)
                    }
                }
            }
            return (held, unknown)
        }
    }

    /// A unary Heartbeat: refreshes these leases wherever they are held by `executorID` (a poll
    /// session's, or a lease stream's the executor also heartbeats by unary call). Keyed by
    /// session, a stream's lease heartbeated this way was answered valid with a new expiry, then
    /// lapsed by the keeper as silent (found by black-box testing).
    func heartbeat(executorID: String, tokens: [LeaseToken], now: UnixMillis) {
        state.withLock { state in
            for token in tokens {
                if var lease = state.leases[token.taskID], lease.token == token, lease.executorID.hasSameBytes(as: executorID) {
                    lease.lastHeartbeat = now
                    lease.heartbeatedAt = now
                    state.leases[token.taskID] = lease
                }
            }
        }
    }

    /// A lease this server saw lapse whose database expiry another server pushed to `expiry` (a
    /// unary Heartbeat through it): its last sign of life is one TTL before that, and the keeper
    /// looks again once it passes. Returns false when the lease is no longer held here.
    @discardableResult
    func heardElsewhere(_ token: LeaseToken, expiry: UnixMillis) -> Bool {
        state.withLock { state in
            guard var lease = state.leases[token.taskID], lease.token == token else { return false }
            lease.lastHeartbeat = max(lease.lastHeartbeat, expiry - lease.ttlMillis)
            lease.databaseExpiry = max(lease.databaseExpiry, expiry)
            state.leases[token.taskID] = lease
            return true
        }
    }

    /// Splits live leases for the keeper: those to extend (heartbeat seen within the TTL and the
    /// database expiry closer than two thirds of the TTL) and those whose heartbeats stopped; and
    /// the shortest TTL held, which sets how soon the keeper must look again (`keeperPause`).
    func keeperWork(now: UnixMillis) -> (extend: [LiveLease], lapsed: [LiveLease], shortestTTLMillis: Int64?) {
        state.withLock { state in
            var extend: [LiveLease] = []
            var lapsed: [LiveLease] = []
            var shortest: Int64?
            for lease in state.leases.values {
                shortest = min(shortest ?? lease.ttlMillis, lease.ttlMillis)
                if lease.lastHeartbeat < now - lease.ttlMillis {
                    lapsed.append(lease)
                } else if lease.databaseExpiry - now < lease.ttlMillis * 2 / 3,
                    lease.lastHeartbeat + lease.ttlMillis > lease.databaseExpiry
                {
                    extend.append(lease)
                }
            }
            return (extend, lapsed, shortest)
        }
    }

    /// How long the keeper may sleep: its interval, or a third of the shortest TTL held when that
    /// is shorter (not under 100 ms). A lease's database expiry is extended only by the keeper;
    /// with a TTL at or under the interval (a task's own `lease_ttl_ms` of 1–2 s) the reaper met
    /// the expiry before the keeper's next round, and the lease was lost although its executor
    /// heartbeated every third of the TTL and was told each time that it was extended (found by
    /// black-box testing).
    static func keeperPause(interval: Duration, shortestTTLMillis: Int64?) -> Duration {
        guard let shortest = shortestTTLMillis else { return interval }
        return min(interval, .milliseconds(max(100, shortest / 3)))
    }

    func updateExpiry(_ token: LeaseToken, to expiry: UnixMillis) {
        state.withLock { state in
            if state.leases[token.taskID]?.token == token { state.leases[token.taskID]?.databaseExpiry = expiry }
        }
    }

    /// Removes the lease (if held with this token) and tells its session.
    func revoke(_ token: LeaseToken, reason: String) {
        let handle = state.withLock { state -> SessionHandle? in
            guard let lease = state.leases[token.taskID], lease.token == token else { return nil }
            state.leases[token.taskID] = nil
            state.leaseCountBySession[lease.sessionID, default: 1] -= 1
            return state.sessions[lease.sessionID]
        }
        handle?.revoke(token, reason)
    }

    /// Like `revoke`, for a lease `executorID` holds here (a unary Heartbeat found it no longer
    /// held): another executor's live lease, named with a guessed token, stays in place.
    func revoke(_ token: LeaseToken, ownedBy executorID: String, reason: String) {
        let owned = state.withLock { state in state.leases[token.taskID].map { $0.token == token && $0.executorID.hasSameBytes(as: executorID) } ?? false }
        if owned { revoke(token, reason: reason) }
    }

    /// Revokes a lease whose heartbeats stopped and tells its session that it went silent.
    func lapse(_ token: LeaseToken, reason: String) {
        let handle = state.withLock { state -> SessionHandle? in
            guard let lease = state.leases[token.taskID], lease.token == token else { return nil }
            return state.sessions[lease.sessionID]
        }
        revoke(token, reason: reason)
        handle?.heartbeatsStopped()
    }

    /// Revokes a lease the reaper found expired in the database. When its session has not
    /// heartbeated for the lease's TTL the session is told it went silent too, as `lapse` does:
    /// the reaper can get there before the keeper notices the silence, and the silent stream then
    /// stayed open and was handed the requeued work, whose leases lapsed in turn until their
    /// attempts ran out (found by black-box testing).
    func revokeExpired(_ token: LeaseToken, reason: String, now: UnixMillis, heartbeatIntervalMillis: Int64) {
        lapseOrRevoke(token, reason: reason, now: now, heartbeatIntervalMillis: heartbeatIntervalMillis)
    }

    /// Revokes a lease whose heartbeats stopped; the session is told it went silent only when it
    /// has been quiet for two heartbeat intervals too, and only when the stream itself went quiet:
    /// an executor heartbeating some of its leases by name lets the others go, and keeps its
    /// stream and the leases it named (closing the stream gave those back, their attempts spent;
    /// found by black-box testing). A task's own TTL may be shorter than the
    /// interval executors are asked to heartbeat at, and then it lapses between heartbeats of a
    /// healthy stream, which goes on (EXECUTORS.md step 2); closing the stream for it gave back
    /// the stream's other, healthy leases (found by black-box testing).
    func lapseOrRevoke(_ token: LeaseToken, reason: String, now: UnixMillis, heartbeatIntervalMillis: Int64) {
        let silent = state.withLock { state -> Bool in
            guard let lease = state.leases[token.taskID], lease.token == token else { return false }
            return Self.isSilent(lease, state, now: now, heartbeatIntervalMillis: heartbeatIntervalMillis)
        }
        if silent { lapse(token, reason: reason) } else { revoke(token, reason: reason) }
    }

    /// Whether the stream holding this lease has gone silent (no heartbeat for a TTL). A poll
    /// session's lease is never: it has no stream, and lives by heartbeats alone.
    func holderIsSilentStream(_ token: LeaseToken, now: UnixMillis, heartbeatIntervalMillis: Int64) -> Bool {
        state.withLock { state in
            guard let lease = state.leases[token.taskID], lease.token == token,
                !lease.sessionID.hasPrefix(Self.pollSessionPrefix)
            else { return false }
            return Self.isSilent(lease, state, now: now, heartbeatIntervalMillis: heartbeatIntervalMillis)
        }
    }

    private static func isSilent(_ lease: LiveLease, _ state: State, now: UnixMillis, heartbeatIntervalMillis: Int64) -> Bool {
        // A registered stream: heard when it opened and at each heartbeat; else the lease's own time.
        let streamHeard = state.lastHeardBySession[lease.sessionID] ?? lease.lastHeartbeat
        let lastHeard = max(streamHeard, lease.heartbeatedAt ?? streamHeard)
        return now - lastHeard >= max(lease.ttlMillis, 2 * heartbeatIntervalMillis)
    }

    /// What a report of this exact lease may make ready (`.unknown` unless it is held here, with
    /// its task known).
    func reportSubject(_ token: LeaseToken) -> ReportSubject {
        state.withLock { state in
            guard let lease = state.leases[token.taskID], lease.token == token, let workflowID = lease.workflowID,
                let key = lease.taskKey
            else { return .unknown }
            return .task(workflowID: workflowID, key: key, mayProposeGraph: lease.mayProposeGraph ?? true)
        }
    }

    /// The workflow of this exact lease, when known.
    func workflowOf(_ token: LeaseToken) -> String? {
        state.withLock { state in
            guard let lease = state.leases[token.taskID], lease.token == token else { return nil }
            return lease.workflowID
        }
    }

    /// The key of the task of this exact lease, when known.
    func keyOf(_ token: LeaseToken) -> String? {
        state.withLock { state in
            guard let lease = state.leases[token.taskID], lease.token == token else { return nil }
            return lease.taskKey
        }
    }

    /// Revokes every lease of `workflowID` held here: its tasks were cancelled by the workflow's
    /// failure policy, and their executors should stop now rather than at the keeper's next round.
    func revokeWorkflow(_ workflowID: String, reason: String) {
        let tokens = state.withLock { state in
            state.leases.values.filter { $0.workflowID == workflowID && !$0.finalReportInFlight }.map(\.token)
        }
        for token in tokens { revoke(token, reason: reason) }
    }

    /// Marks (or unmarks) a final report of this exact lease as being applied (`LiveLease.finalReportInFlight`);
    /// with `session`, only while that stream holds the lease (a report from another stream is refused).
    func setFinalReportInFlight(_ token: LeaseToken, _ inFlight: Bool, session: String? = nil) {
        state.withLock { state in
            guard let lease = state.leases[token.taskID], lease.token == token, session == nil || lease.sessionID == session else { return }
            state.leases[token.taskID]?.finalReportInFlight = inFlight
        }
    }

    /// Revokes whatever lease is held on this task, whatever its token (cancellation).
    func revokeTask(_ taskID: String, reason: String) {
        let token = state.withLock { $0.leases[taskID]?.token }
        if let token { revoke(token, reason: reason) }
    }

    /// The registered sessions of an executor (diagnostics and tests).
    func sessionIDs(executorID: String) -> [String] {
        state.withLock { state in state.sessions.compactMap { $0.value.offer?.executor.executorID.hasSameBytes(as: executorID) == true ? $0.key : nil } }
    }

    /// The TTL a held lease was granted with (the task's own or the server's), nil when not held here.
    func ttlMillis(of token: LeaseToken) -> Int64? {
        state.withLock { state in state.leases[token.taskID].flatMap { $0.token == token ? $0.ttlMillis : nil } }
    }

    var totalLeases: Int { state.withLock { $0.leases.count } }
    var sessionCount: Int { state.withLock { $0.sessions.count } }

    /// Every open lease stream, for operators (`DispatchService.executorSessions`).
    func sessionSnapshots() -> [ExecutorSession] {
        state.withLock { state in
            state.sessions.compactMap { id, handle in
                guard let executor = handle.offer?.executor else { return nil }
                return ExecutorSession(
                    sessionID: id, executor: executor, openedAt: state.openedAtBySession[id] ?? 0,
                    lastHeard: state.lastHeardBySession[id] ?? 0, leasesHeld: state.leaseCountBySession[id] ?? 0,
                    draining: handle.isDraining())
            }
        }
    }
}
