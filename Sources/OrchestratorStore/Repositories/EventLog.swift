import Foundation
import OrchestratorApp
import OrchestratorDomain
import PostgresClient

/// An event built in Swift (workflow-level events and events of tasks handled one by one).
/// Events that follow from set-based updates are generated in SQL next to the update instead
/// (`INSERT … SELECT … FROM updated`), so a 100,000-task change never ships its events back and forth.
struct EventDraft {
    var workflowID: String
    var kind: EventKind
    var at: UnixMillis
    var taskID: String? = nil
    var taskKey: String? = nil
    /// The database's state name (`retry_wait` allowed).
    var taskState: String? = nil
    var attempt: Int? = nil
    var executorID: String? = nil
    var workflowState: WorkflowState? = nil
    var dagVersion: Int? = nil
    var message: String = ""
    var progress: Double? = nil
    var traceID: String
    /// nil = the transaction's cause (`AuditCause.current` when it began).
    var actor: Actor? = nil
    /// nil = the cause's trace id.
    var requestTraceID: String? = nil
}

extension StoreTransaction {
    /// Appends events in one statement (`unnest` of one array per column), queued: it is sent
    /// with the transaction's next statement or its COMMIT. Events without an explicit actor get
    /// the transaction's cause (the audit trail).
    func append(_ events: [EventDraft]) throws {
        guard !events.isEmpty else { return }
        var actors: [String?] = []
        var requestTraces: [String?] = []
        for event in events {
            actors.append(try event.actor.map(ActorJSON.text) ?? causeActor)
            requestTraces.append(event.requestTraceID ?? causeTraceID)
        }
        queue(
            """
            INSERT INTO workflow_events (workflow_id, type, at, task_id, task_key, task_state, attempt, executor_id,
                                         workflow_state, dag_version, message, progress, trace_id, actor, request_trace_id)
            SELECT e.w, e.ty, e.a, e.tid::uuid, e.tk, e.ts, e.att, e.ex, e.ws,
                   -- Workflow events carry the workflow's DAG version (WorkflowEvent.dag_version).
                   coalesce(e.dv, CASE WHEN e.ty LIKE 'workflow\\_%' THEN (SELECT w.current_dag_version FROM workflows w WHERE w.id = e.w) END),
                   e.m, e.p, e.tr, e.ac::jsonb, e.rt
              FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[], $5::text[], $6::text[], $7::int8[],
                          $8::text[], $9::text[], $10::int8[], $11::text[], $12::float8[], $13::text[], $14::text[],
                          $15::text[])
                   AS e(w, ty, a, tid, tk, ts, att, ex, ws, dv, m, p, tr, ac, rt)
            """,
            [
                events.map(\.workflowID), events.map(\.kind.rawValue), events.map(\.at.sqlTimestamp),
                events.map(\.taskID), events.map(\.taskKey), events.map(\.taskState), events.map { $0.attempt.map(Int64.init) },
                events.map(\.executorID), events.map { $0.workflowState?.rawValue }, events.map { $0.dagVersion.map(Int64.init) },
                events.map(\.message), events.map(\.progress), events.map(\.traceID), actors,
                requestTraces,
            ])
        appendedEvents = true
    }
}
