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
    func transaction<T>(settings: [PostgresLocalSetting] = [], _ body: (StoreTransaction) async throws -> T) async throws -> T {
        try await StoreErrors.mapping {
            try await pool.withTransaction(settings: settings) { session in
                let transaction = try StoreTransaction(session: session, configuration: configuration)
                let result = try await body(transaction)
                try await transaction.sendNotifications()
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
    let session: PostgresSession
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

    init(session: PostgresSession, configuration: StoreConfiguration) throws {
        self.session = session
        self.configuration = configuration
        let cause = AuditCause.current
        causeActor = try cause.map { try ActorJSON.text($0.actor) }
        causeTraceID = cause?.traceID
    }

    @discardableResult
    func query(_ sql: String, _ binds: [any PostgresEncodable] = []) async throws -> PostgresRows {
        try await session.query(sql, binds)
    }

    /// Queues the NOTIFYs owed so far (one statement) and clears the flags, so a later call sends
    /// only what was added since. The event channel's payload is the newest sequence this
    /// transaction took (`currval` of the identity sequence: this session just called `nextval`).
    func sendNotifications() async throws {
        switch (readiedTasks, appendedEvents) {
        case (true, true):
            try await session.query(
                "SELECT pg_notify($1, ''), pg_notify($2, currval(pg_get_serial_sequence('workflow_events', 'seq'))::text)",
                [configuration.tasksReadyChannel, configuration.eventsChannel])
        case (true, false):
            try await session.query("SELECT pg_notify($1, '')", [configuration.tasksReadyChannel])
        case (false, true):
            try await session.query(
                "SELECT pg_notify($1, currval(pg_get_serial_sequence('workflow_events', 'seq'))::text)",
                [configuration.eventsChannel])
        case (false, false):
            return
        }
        readiedTasks = false
        appendedEvents = false
    }
}
