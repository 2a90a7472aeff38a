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
        var lastHeartbeat: UnixMillis
        var databaseExpiry: UnixMillis
        /// Whether the task may be a delegated planning task (its key is the planner's), whose
        /// completion proposes a graph; nil when unknown (a resumed lease).
        var mayProposeGraph: Bool? = nil
    }

    /// How a session is told about leases taken away from it.
    struct SessionHandle: Sendable {
        let revoke: @Sendable (LeaseToken, String) -> Void
        /// Called when one of the session's leases lapsed for want of heartbeats: the executor
        /// is frozen or partitioned, so its free slots must not be handed the retries.
        var heartbeatsStopped: @Sendable () -> Void = {}
    }

    private struct State {
        var leases: [String: LiveLease] = [:]          // by task id
        var sessions: [String: SessionHandle] = [:]
        var leaseCountBySession: [String: Int] = [:]
    }

    private let state = Mutex(State())

    func registerSession(_ id: String, handle: SessionHandle) {
        state.withLock { $0.sessions[id] = handle }
    }

    /// Forgets the session and returns the leases it still held.
    func removeSession(_ id: String) -> [LiveLease] {
        state.withLock { state in
            state.sessions[id] = nil
            state.leaseCountBySession[id] = nil
            let held = state.leases.values.filter { $0.sessionID == id }
            for lease in held { state.leases[lease.token.taskID] = nil }
            return held
        }
    }

    func add(_ lease: LiveLease) {
        state.withLock { state in
            if let old = state.leases[lease.token.taskID] {
                state.leaseCountBySession[old.sessionID, default: 1] -= 1
            }
            state.leases[lease.token.taskID] = lease
            state.leaseCountBySession[lease.sessionID, default: 0] += 1
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

    /// The session holding this exact lease, if any.
    func sessionOf(_ token: LeaseToken) -> String? {
        state.withLock { state in
            guard let lease = state.leases[token.taskID], lease.token == token else { return nil }
            return lease.sessionID
        }
    }

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

    /// Records a heartbeat for the given leases of `session` (all of them when empty); returns
    /// the leases it touched and the ones it does not hold.
    func heartbeat(session: String, tokens: [LeaseToken], now: UnixMillis) -> (held: [LiveLease], unknown: [LeaseToken]) {
        state.withLock { state in
            var held: [LiveLease] = []
            var unknown: [LeaseToken] = []
            if tokens.isEmpty {
                for (taskID, lease) in state.leases where lease.sessionID == session {
                    state.leases[taskID]?.lastHeartbeat = now
                    held.append(lease)
                }
            } else {
                for token in tokens {
                    if var lease = state.leases[token.taskID], lease.token == token, lease.sessionID == session {
                        lease.lastHeartbeat = now
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

    /// Splits live leases for the keeper: those to extend (heartbeat seen within the TTL and the
    /// database expiry closer than two thirds of the TTL) and those whose heartbeats stopped.
    func keeperWork(now: UnixMillis) -> (extend: [LiveLease], lapsed: [LiveLease]) {
        state.withLock { state in
            var extend: [LiveLease] = []
            var lapsed: [LiveLease] = []
            for lease in state.leases.values {
                if lease.lastHeartbeat < now - lease.ttlMillis {
                    lapsed.append(lease)
                } else if lease.databaseExpiry - now < lease.ttlMillis * 2 / 3,
                    lease.lastHeartbeat + lease.ttlMillis > lease.databaseExpiry
                {
                    extend.append(lease)
                }
            }
            return (extend, lapsed)
        }
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

    /// Revokes a lease whose heartbeats stopped and tells its session that it went silent.
    func lapse(_ token: LeaseToken, reason: String) {
        let handle = state.withLock { state -> SessionHandle? in
            guard let lease = state.leases[token.taskID], lease.token == token else { return nil }
            return state.sessions[lease.sessionID]
        }
        revoke(token, reason: reason)
        handle?.heartbeatsStopped()
    }

    /// Revokes whatever lease is held on this task, whatever its token (cancellation).
    func revokeTask(_ taskID: String, reason: String) {
        let token = state.withLock { $0.leases[taskID]?.token }
        if let token { revoke(token, reason: reason) }
    }

    var totalLeases: Int { state.withLock { $0.leases.count } }
    var sessionCount: Int { state.withLock { $0.sessions.count } }
}
