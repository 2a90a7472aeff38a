import Foundation
import OrchestratorApp
import OrchestratorDomain
import PostgresClient

extension PostgresDispatchStore {
    public func extendLeases(_ extensions: [LeaseExtension]) async throws -> [LeaseState] {
        // Tokens that are not task ids cannot be held: answered without asking the database. The
        // rest go in task id order, the order in which every batch locks task rows: a completion
        // batch or a cancellation locking the same rows in another order deadlocked with the
        // keeper, whose lost extension then let healthy executors' leases expire. A transaction,
        // so that a deadlock still met is retried rather than failing the keeper's round.
        let wellFormed = extensions.compactMap { item in UUID(uuidString: item.lease.taskID).map { (key: $0.uuidString, item: item) } }
            .sorted { $0.key < $1.key }.map(\.item)
        var held: [LeaseToken: UnixMillis] = [:]
        if !wellFormed.isEmpty {
            let now = Date()
            let rows = try await context.transaction { session in
                try await session.query(
                    DispatchSQL.extendLeases,
                    [
                        wellFormed.map { UUID(uuidString: $0.lease.taskID)! }, wellFormed.map(\.lease.fencingToken),
                        wellFormed.map(\.executorID), wellFormed.map(\.until.sqlTimestamp), now,
                    ])
            }
            for row in rows {
                guard let expiry = try row.decode(Date?.self, column: "lease_expires_at") else { continue }
                let lease = LeaseToken(taskID: try row.decode(String.self, column: "id"), fencingToken: try row.decode(Int64.self, column: "token"))
                held[lease] = expiry.unixMillis
            }
        }
        return extensions.map { item in
            let normalised = LeaseToken(taskID: item.lease.taskID.lowercased(), fencingToken: item.lease.fencingToken)
            let expiry = held[normalised]
            return LeaseState(lease: item.lease, valid: expiry != nil, expiresAt: expiry)
        }
    }

    public func expireLeases(now: UnixMillis, limit: Int) async throws -> [ExpiredLease] {
        try await expireLeases(now: now, expiredBefore: now, limit: limit)
    }

    public func expireLeases(now: UnixMillis, expiredBefore: UnixMillis, limit: Int) async throws -> [ExpiredLease] {
        let cutoff = min(expiredBefore, now)
        let configuration = context.configuration
        return try await context.transaction { transaction in
            // The reaper also promotes retries whose backoff elapsed, so they become claimable (and
            // dispatchers are woken) even when no executor is asking.
            let promoted = try await transaction.query(
                DispatchSQL.promoteDueRetries, [now.sqlTimestamp, configuration.agingBucket(now), max(limit, 1)])
            let events = try transaction.promotedRetryEvents(promoted, now: now)
            // Queued: sent with the next statement, ahead of the events the expiries append.
            transaction.appendLast(events)
            let rows = try await transaction.query(DispatchSQL.expiredLeases, [cutoff.sqlTimestamp, max(limit, 1)])
            let expired = try await settle(
                try lostLeases(rows, transaction: transaction), source: .leaseExpired, immediate: false,
                message: "lease expired", now: now, transaction: transaction)
            // Attempts past their start_to_close timeout: a retryable failure with source `timeout`,
            // requeued with backoff like an expiry; the holder's token is stale from now on. Runs
            // after the expiry above, whose settled rows are no longer leased and are not seen again.
            let late = try await transaction.query(DispatchSQL.timedOutAttempts, [cutoff.sqlTimestamp, max(limit - expired.count, 1)])
            let timedOut = try await settle(
                try lostLeases(late, transaction: transaction), source: .timeout, immediate: false,
                message: "start_to_close timeout exceeded", now: now, transaction: transaction)
            return expired + timedOut
        }
    }

    /// Released leases are requeued at once (no backoff: the executor went away, the task did not
    /// misbehave), but the attempt they used counts against `maxAttempts` — a task that kills every
    /// executor it reaches must not circulate forever — and the next claim takes a new fencing
    /// token, so the released holder's token is stale from now on.
    public func releaseLeases(_ leases: [LeaseToken], executorID: String, sessionID: String?, reason: String, now: UnixMillis) async throws
        -> [ExpiredLease]
    {
        try await settleHeld(
            leases, executorID: executorID, sessionID: sessionID, expiredBy: nil, source: .released, immediate: true,
            message: reason.isEmpty ? "lease released" : reason, now: now)
    }

    /// Undoes the claims of leases the server never sent (a PollTasks response had no room for
    /// them, or its caller was gone): nothing is spent — no attempt, no backoff — and each task is
    /// ready again at its place in the queue, with a task_ready event saying why. Returns how many
    /// were still held by `executorID` with these tokens and not yet reported on.
    public func returnUnsentLeases(_ leases: [LeaseToken], executorID: String, reason: String, now: UnixMillis) async throws -> Int {
        let wellFormed = leases.compactMap { lease in UUID(uuidString: lease.taskID).map { ($0, lease.fencingToken) } }
            .sorted { $0.0.uuidString < $1.0.uuidString }
        guard !wellFormed.isEmpty else { return 0 }
        return try await context.transaction { transaction in
            let rows = try await transaction.query(
                DispatchSQL.returnUnsent, [wellFormed.map(\.0), wellFormed.map(\.1), executorID, now.sqlTimestamp])
            let events = try rows.map { row in
                EventDraft(
                    workflowID: try row.decode(String.self, column: "workflow_id"), kind: .taskReady, at: now,
                    taskID: try row.decode(String.self, column: "id"), taskKey: try row.decode(String.self, column: "key"),
                    taskState: "ready", attempt: try row.decode(Int.self, column: "attempt"), executorID: executorID,
                    message: reason, traceID: try row.decode(String.self, column: "trace_id"))
            }
            try transaction.append(events)
            if !events.isEmpty { transaction.readiedTasks = true }
            return events.count
        }
    }

    /// Lapsed leases are settled as the reaper settles an expiry (backoff, outcome lease_expired),
    /// those whose database expiry has passed: one still ahead was extended through another
    /// server since (a unary Heartbeat), and is alive.
    public func lapseLeases(_ leases: [LeaseToken], executorID: String, sessionID: String?, reason: String, now: UnixMillis) async throws
        -> [ExpiredLease]
    {
        try await settleHeld(
            leases, executorID: executorID, sessionID: sessionID, expiredBy: now, source: .leaseExpired, immediate: false,
            message: reason.isEmpty ? "lease expired" : reason, now: now)
    }

    /// Settles those of `leases` that `executorID` still holds with these tokens, that no stream
    /// other than `sessionID` resumed since and, with `expiredBy`, whose database expiry is not
    /// after it.
    private func settleHeld(
        _ leases: [LeaseToken], executorID: String, sessionID: String?, expiredBy: UnixMillis?, source: TaskFailureInfo.Source,
        immediate: Bool, message: String, now: UnixMillis
    ) async throws -> [ExpiredLease] {
        let wellFormed = leases.compactMap { lease in UUID(uuidString: lease.taskID).map { ($0, lease.fencingToken) } }
        guard !wellFormed.isEmpty else { return [] }
        return try await context.transaction { transaction in
            var held = try lostLeases(
                try await transaction.query(
                    DispatchSQL.heldLeases, [wellFormed.map(\.0), wellFormed.map(\.1), executorID, expiredBy?.sqlTimestamp]),
                transaction: transaction)
            if let sessionID, !held.isEmpty {
                // A statement of its own, after the row locks above: it sees a resumption that
                // committed while this transaction waited for them (a recheck inside the locking
                // statement would read task_attempts as of before the wait).
                let elsewhere = Set(
                    try await transaction.query(DispatchSQL.resumedElsewhere, [held.map(\.id), held.map(\.attempt), sessionID])
                        .map { try $0.decode(UUID.self, column: "task_id") })
                held.removeAll { elsewhere.contains($0.id) }
            }
            return try await settle(held, source: source, immediate: immediate, message: message, now: now, transaction: transaction)
        }
    }

    struct LostLease {
        var id: UUID
        var workflowID: String
        var key: String
        var attempt: Int
        var maxAttempts: Int
        var token: Int64
        var owner: String
        var spec: TaskSpec
        var traceID: String
    }

    private func lostLeases(_ rows: PostgresRows, transaction: StoreTransaction) throws -> [LostLease] {
        try rows.map { row in
            LostLease(
                id: try row.decode(UUID.self, column: "id"), workflowID: try row.decode(String.self, column: "workflow_id"),
                key: try row.decode(String.self, column: "key"), attempt: try row.decode(Int.self, column: "attempt"),
                maxAttempts: try row.decode(Int.self, column: "max_attempts"), token: try row.decode(Int64.self, column: "fencing_token"),
                owner: try row.decode(String?.self, column: "lease_owner") ?? "",
                spec: try TaskSpecJSON.decodeOrThrow(try row.decode(PostgresJSON.self, column: "metadata").text, decoder: transaction.decoder),
                traceID: try row.decode(String.self, column: "trace_id"))
        }
    }

    /// Requeues (with backoff unless `immediate`) or fails each lost lease, in one statement, then
    /// applies the failure policy of the workflows whose tasks failed.
    private func settle(
        _ leases: [LostLease], source: TaskFailureInfo.Source, immediate: Bool, message: String, now: UnixMillis,
        transaction: StoreTransaction
    ) async throws -> [ExpiredLease] {
        guard !leases.isEmpty else { return [] }
        var states: [String] = []
        var nextAttempts: [Date] = []
        var errors: [String] = []
        var events: [EventDraft] = []
        var expired: [ExpiredLease] = []
        var notes: [String] = []
        for lease in leases {
            let note = source == .timeout
                ? "\(message): the attempt ran longer than \(lease.spec.timeoutSeconds ?? 0) s" : message
            notes.append(note)
            let failure = TaskFailureInfo(message: note, code: source.rawValue, retryable: true, attempt: lease.attempt, source: source)
            errors.append(try JSONColumn.encode(FailureJSON(failure)).text)
            let taskID = lease.id.uuidString.lowercased()
            let state: String
            let delay: Int64
            if lease.attempt < lease.maxAttempts {
                delay = immediate ? 0 : RetryDelay.millis(
                    spec: lease.spec, afterAttempt: lease.attempt, sample: RetryDelay.sample(taskID: taskID, attempt: lease.attempt))
                state = delay > 0 ? TaskStateColumn.retryWait : "ready"
            } else {
                delay = 0
                state = "failed"
            }
            states.append(state)
            nextAttempts.append((now + delay).sqlTimestamp)
            if source != .timeout {
                events.append(EventDraft(
                    workflowID: lease.workflowID, kind: .taskLeaseExpired, at: now, taskID: taskID, taskKey: lease.key, taskState: state,
                    attempt: lease.attempt, executorID: lease.owner, message: note, traceID: lease.traceID))
            }
            events.append(EventDraft(
                workflowID: lease.workflowID, kind: state == "failed" ? .taskFailed : .taskRetryScheduled, at: now, taskID: taskID,
                taskKey: lease.key, taskState: state, attempt: lease.attempt, executorID: lease.owner,
                message: state == "failed" ? "\(note); attempts exhausted" : "\(note) (retry in \(delay) ms)", traceID: lease.traceID))
            if state == "ready" {
                // As when a backoff elapses (promoteDueRetries): every return to the queue has its task_ready.
                events.append(EventDraft(
                    workflowID: lease.workflowID, kind: .taskReady, at: now, taskID: taskID, taskKey: lease.key, taskState: "ready",
                    attempt: lease.attempt, traceID: lease.traceID))
            }
            var lost = ExpiredLease(
                lease: LeaseToken(taskID: taskID, fencingToken: lease.token), workflowID: lease.workflowID, executorID: lease.owner,
                newState: state == "failed" ? .failed : .ready)
            lost.cause = source
            lost.taskKey = lease.key
            expired.append(lost)
        }
        // The failure policy's locks before the events below (`lockForFailurePolicy` says why).
        let failingWorkflows = Set(zip(leases, states).filter { $0.1 == "failed" }.map(\.0.workflowID))
        try await transaction.lockForFailurePolicy(workflowIDs: failingWorkflows.sorted())
        try await transaction.query(
            DispatchSQL.settleLostLeases,
            [
                leases.map(\.id), states, nextAttempts, errors, now.sqlTimestamp, context.configuration.agingBucket(now),
                source == .leaseExpired ? "lease_expired" : source == .timeout ? "timed_out" : "revoked",
            ])
        try transaction.append(events)
        if states.contains("ready") { transaction.readiedTasks = true }
        for (index, (lease, state)) in zip(leases, states).enumerated() where state == "failed" {
            expired[index].workflowState = try await transaction.applyFailurePolicy(
                workflowID: lease.workflowID, failedTaskID: lease.id, failedKey: lease.key, reason: notes[index] + "; attempts exhausted",
                traceID: lease.traceID, now: now)
        }
        return expired
    }
}
