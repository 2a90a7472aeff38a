import Foundation
import OrchestratorApp
import PostgresClient

/// What every repository shares: the pool, the configuration, and the transaction wrapper that
/// sends the NOTIFYs and translates errors.
struct StoreContext: Sendable {
    let pool: PostgresPool
    let configuration: StoreConfiguration

    /// Runs `body` in one transaction (re-run on serialization failures and deadlocks), then sends
    /// the notifications it asked for — inside the transaction, so they are delivered on commit
    /// and never for work that rolled back. Database errors are translated (`StoreErrors`).
    ///
    /// The transaction is pipelined (`PostgresPipelinedTransaction`): BEGIN goes with the first
    /// statement, queued statements (the events appended last, the NOTIFYs) with COMMIT.
    func transaction<T>(settings: [PostgresSetting] = [], _ body: (StoreTransaction) async throws -> T) async throws -> T {
        try await StoreErrors.mapping {
            try await pool.withPipelinedTransaction(settings: settings) { pipelined in
                let transaction = try StoreTransaction(pipelined, configuration: configuration)
                let result = try await body(transaction)
                transaction.sendNotifications()
                return result
            }
        }
    }

    /// Runs reads on one borrowed connection (no explicit transaction).
    func read<T>(_ body: (PostgresSession) async throws -> T) async throws -> T {
        try await StoreErrors.mapping { try await pool.withConnection(body) }
    }
}

/// One running transaction and the wake-ups it owes. Used only inside the closure it was made for.
final class StoreTransaction {
    private let pipelined: PostgresPipelinedTransaction
    let configuration: StoreConfiguration
    /// Some task became ready (or claimable): dispatchers should look.
    var readiedTasks = false
    /// Events were appended: watchers should look.
    var appendedEvents = false
    let decoder = JSONDecoder()
    /// The audit cause of every event this transaction appends: the actor (jsonb text of
    /// `workflow_events.actor`) and trace id of the call it runs for (`AuditCause.current`), nil
    /// for the server's own work. Statements that append events in SQL bind both.
    let causeActor: String?
    let causeTraceID: String?

    init(_ pipelined: PostgresPipelinedTransaction, configuration: StoreConfiguration) throws {
        self.pipelined = pipelined
        self.configuration = configuration
        let cause = AuditCause.current
        causeActor = try cause.map { try ActorJSON.text($0.actor) }
        causeTraceID = cause?.traceID
    }

    /// Runs one statement, prepared on first use on this connection: the store's statements are
    /// constants, and parsing and planning its big batch statements costs more than running
    /// them on small batches (docs/POSTGRES.md, "Prepared statements").
    @discardableResult
    func query(_ sql: String, _ binds: [any PostgresEncodable] = []) async throws -> PostgresRows {
        try await pipelined.query(sql, binds)
    }

    /// Runs statements that do not need each other's results in one round trip, in order.
    func queries(_ statements: [PostgresStatement]) async throws -> [PostgresRows] {
        try await pipelined.queries(statements)
    }

    /// Sends `sql` with the next statement or with COMMIT, for statements whose rows nobody reads:
    /// saves their round trip. Their errors surface from that next call.
    func queue(_ sql: String, _ binds: [any PostgresEncodable] = []) {
        pipelined.queue(sql, binds)
    }

    /// Queues the NOTIFYs owed so far (one statement, sent with COMMIT) and clears the flags, so
    /// a later call sends only what was added since. The event channel's payload is the newest
    /// sequence this transaction took (`currval` of the identity sequence: this session just
    /// called `nextval`).
    func sendNotifications() {
        switch (readiedTasks, appendedEvents) {
        case (true, true):
            queue(
                "SELECT pg_notify($1, ''), pg_notify($2, currval(pg_get_serial_sequence('workflow_events', 'seq'))::text)",
                [configuration.tasksReadyChannel, configuration.eventsChannel])
        case (true, false):
            queue("SELECT pg_notify($1, '')", [configuration.tasksReadyChannel])
        case (false, true):
            queue(
                "SELECT pg_notify($1, currval(pg_get_serial_sequence('workflow_events', 'seq'))::text)",
                [configuration.eventsChannel])
        case (false, false):
            return
        }
        readiedTasks = false
        appendedEvents = false
    }
}
