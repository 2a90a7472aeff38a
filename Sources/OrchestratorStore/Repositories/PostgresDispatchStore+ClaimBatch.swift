import Foundation
import OrchestratorApp
import OrchestratorDomain
import PostgresClient

extension PostgresDispatchStore {
    /// Applies a batch of claims in one transaction (the claim group commit: `claimTasks` queues
    /// each request, `GroupCommit` hands whatever is queued to this): due retries are promoted
    /// once (their task_ready events wait for the append at the end), then one claim statement per distinct (capabilities, tenants, lease TTL) leases tasks
    /// for every request of that kind at once — its slots interleave the requests round-robin, so
    /// the most urgent tasks are shared out rather than all going to the first asker, each task
    /// with its upstream results and its workflow's query inputs — and one statement appends the
    /// task_leased events with the NOTIFY, last (`appendLast`), sent with COMMIT: two round trips.
    func claimBatch(_ batch: [Caused<ClaimRequest>]) async -> [Result<[ClaimedTask], any Error>] {
        let requests = batch.map(\.value)
        let wanted = requests.indices.filter { requests[$0].limit > 0 }
        guard !wanted.isEmpty else { return requests.map { _ in .success([]) } }
        let configuration = context.configuration
        do {
            let causes = try Caused<ClaimRequest>.columns(batch.map(\.cause))
            let claimed = try await context.transaction(settings: DispatchSQL.claimSettings) { transaction -> [[ClaimedTask]] in
                let now = wanted.map { requests[$0].now }.max()!
                var groups: [ClaimGroupKey: [Int]] = [:]
                var order: [ClaimGroupKey] = []
                for index in wanted {
                    let key = ClaimGroupKey(requests[index])
                    if groups[key] == nil { order.append(key) }
                    groups[key, default: []].append(index)
                }
                // Promotion and every group's claim need none of each other's results: one round
                // trip (with BEGIN), the promotion first so that promoted retries can be claimed.
                var statements = [
                    PostgresStatement(DispatchSQL.promoteDueRetries, [now.sqlTimestamp, configuration.agingBucket(now), 1000])
                ]
                for key in order {
                    let slots = Self.claimSlots(groups[key]!.map { (index: $0, limit: requests[$0].limit) })
                    statements.append(PostgresStatement(
                        DispatchSQL.claim,
                        [
                            now.sqlTimestamp, slots.map { requests[$0].executorID }, key.capabilities, key.tenants,
                            key.leaseTTLMillis, slots.map { Int32($0) }, slots.count, slots.map { causes.actors[$0] },
                            slots.map { causes.traces[$0] },
                        ]))
                }
                let results = try await transaction.queries(statements)
                // Promoted retries' task_ready events go first in the batch's append, before any task_leased.
                var events = try transaction.promotedRetryEvents(results[0], now: now)
                var tasks: [(request: Int, task: StoredTask, upstream: [String: [UInt8]])] = []
                var inputs: [String: [String: String]] = [:]
                for rows in results.dropFirst() {
                    for row in rows {
                        let task = try TaskRow.decode(row, decoder: transaction.decoder)
                        tasks.append((try row.decode(Int.self, column: "claim_request"), task, try Self.upstreamResults(row)))
                        if let json = try row.decode(PostgresJSON?.self, column: "inputs") {
                            inputs[task.workflowID] = try JSONColumn.decode([String: String].self, from: json)
                        }
                        events.add(
                            workflowID: task.workflowID, type: "task_leased", at: now.sqlTimestamp, taskID: try row.decode(UUID.self, column: "id"),
                            key: task.spec.key.rawValue, state: "leased", attempt: Int32(task.attempt), executor: task.leaseOwner,
                            actor: try row.decode(String?.self, column: "claim_actor"), trace: try row.decode(String?.self, column: "claim_trace"))
                    }
                }
                var answers = [[ClaimedTask]](repeating: [], count: requests.count)
                transaction.appendLast(events)
                for (request, task, upstream) in tasks {
                    let expiry = requests[request].now + requests[request].leaseTTLMillis
                    answers[request].append(ClaimedTask(
                        task: task, lease: LeaseToken(taskID: task.taskID, fencingToken: Int64(task.attempt)),
                        leaseExpiresAt: task.leaseExpiresAt ?? expiry, upstreamResults: upstream,
                        inputs: inputs[task.workflowID] ?? [:]))
                }
                return answers
            }
            return claimed.map { .success($0) }
        } catch {
            return requests.map { _ in .failure(error) }
        }
    }

    /// The request index of each slot of one claim statement: round-robin over the requests until
    /// each has `limit` slots, so the k-th most urgent task goes to the k-th slot's request.
    public static func claimSlots(_ requests: [(index: Int, limit: Int)]) -> [Int] {
        var slots: [Int] = []
        var round = 0
        while true {
            var added = false
            for request in requests where request.limit > round {
                slots.append(request.index)
                added = true
            }
            if !added { return slots }
            round += 1
        }
    }

    /// A claimed row's upstream results by upstream key (`DispatchSQL.claim`'s `upstream_keys` and
    /// `upstream_results`, in the same order).
    static func upstreamResults(_ row: PostgresRow) throws -> [String: [UInt8]] {
        guard let keys = try row.decode([String]?.self, column: "upstream_keys") else { return [:] }
        let results = try row.decode([[UInt8]].self, column: "upstream_results")
        guard keys.count == results.count else {
            throw PostgresError(code: .decoding, message: "claim row: \(keys.count) upstream keys but \(results.count) results")
        }
        var byKey: [String: [UInt8]] = [:]
        for (key, result) in zip(keys, results) { byKey[key] = result }
        return byKey
    }
}

/// Claims that one statement can serve together: same capabilities, tenants and lease TTL.
struct ClaimGroupKey: Hashable {
    var capabilities: [String]
    var tenants: [String]?
    var leaseTTLMillis: Int64

    init(_ request: ClaimRequest) {
        capabilities = request.capabilities.sorted()
        tenants = request.tenants.map { $0.sorted() }
        leaseTTLMillis = request.leaseTTLMillis
    }
}
