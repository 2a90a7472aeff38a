import Foundation
import OrchestratorApp
import OrchestratorDomain
import PostgresClient

/// Tasks stored already leased by the transaction that creates them (`NewWorkflow.directLeases`):
/// the columns `insertGraph` takes, the task_leased events, and the claimed tasks handed back.
///
/// Why: a claim is a transaction of its own (about 5 ms of a loaded server's ready→assignment
/// latency in `tools/bench latency`), and the rows it changes were written a moment before.
/// When an executor of this process sits idle with free slots, a new root task goes straight to
/// it: one row version instead of two, no claim, and the same rows, attempt and events a claim
/// would have left (tasks stay `ready` for every executor when none is idle).
struct DirectLeaseColumns {
    /// Per new task of the graph (`GraphRows.newIDs` order): the executor, or nil (not leased).
    var owners: [String?]
    var ttlMillis: [Int64?]
    /// Positions in the new-task arrays of the leased tasks, in DAG order.
    var positions: [Int]

    /// Nil when none of `leases` names a new task without upstream tasks.
    init?(graph: GraphRows, dag: Dag, leases: [TaskKey: DirectLease]) {
        guard !leases.isEmpty else { return nil }
        owners = Array(repeating: nil, count: graph.newIDs.count)
        ttlMillis = Array(repeating: nil, count: graph.newIDs.count)
        positions = []
        for position in graph.newIDs.indices where graph.newUnfinished[position] == 0 {
            let key = dag.tasks[Int(graph.ordinals[position]) - 1].key
            guard let lease = leases[key] else { continue }
            owners[position] = lease.executorID
            ttlMillis[position] = max(1, lease.leaseTTLMillis)
            positions.append(position)
        }
        if positions.isEmpty { return nil }
    }
}

extension PostgresWorkflowStore {
    /// The task_leased events of the directly leased tasks, after their task_ready events (a
    /// claimed task has both, in that order); each carries its executor stream's audit cause.
    func appendDirectLeases(
        _ columns: DirectLeaseColumns, graph: GraphRows, dag: Dag, workflow: NewWorkflow, transaction: StoreTransaction
    ) throws {
        var events = TaskEventRows()
        for position in columns.positions {
            let key = dag.tasks[Int(graph.ordinals[position]) - 1].key
            let cause = workflow.directLeases[key]?.cause
            events.add(
                workflowID: workflow.workflowID, type: "task_leased", at: workflow.now.sqlTimestamp, taskID: graph.newIDs[position],
                key: key.rawValue, state: "leased", attempt: 1, executor: columns.owners[position],
                actor: try cause.map { try ActorJSON.text($0.actor) }, trace: cause?.traceID)
        }
        transaction.appendLast(events)
    }

    /// The directly leased tasks as a claim returns them (`DispatchSQL.claim`, `TaskRow`): what
    /// the insert wrote, with no upstream results (they have no upstream tasks).
    static func claimedTasks(_ columns: DirectLeaseColumns, graph: GraphRows, workflow: NewWorkflow) -> [ClaimedTask] {
        columns.positions.map { position in
            let spec = workflow.dag.tasks[Int(graph.ordinals[position]) - 1]
            let taskID = graph.newIDs[position].uuidString.lowercased()  // as PostgreSQL prints a uuid
            let expiry = workflow.now + columns.ttlMillis[position]!
            let task = StoredTask(
                taskID: taskID, workflowID: workflow.workflowID, tenant: workflow.tenant, spec: spec,
                payload: graph.newPayloads[position], state: .leased, attempt: 1, maxAttempts: max(1, spec.retry.maxAttempts),
                unfinishedUpstream: 0, rank: graph.newRanks[position], priority: spec.priority != 0 ? spec.priority : workflow.priority,
                leaseOwner: columns.owners[position], leaseExpiresAt: expiry, createdAt: workflow.now, readyAt: workflow.now,
                startedAt: workflow.now, traceID: workflow.traceID, traceState: workflow.traceState,
                traceSampled: workflow.traceSampled, dagVersion: 1)
            return ClaimedTask(
                task: task, lease: LeaseToken(taskID: taskID, fencingToken: 1), leaseExpiresAt: expiry, upstreamResults: [:],
                inputs: workflow.query.providedInputs)
        }
    }
}
