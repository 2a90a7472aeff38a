import Synchronization
import Testing

@testable import PostgresClient

@Suite("LISTEN/NOTIFY")
struct ListenerTests {
    @Test func notificationsAreDelivered() async throws {
        try await TestDatabase.withDatabase { url in
            let listener = try PostgresListener(conninfo: url)
            defer { listener.close() }
            let collector = EventCollector(listener.events)
            try await listener.listen("task_ready")
            try await listener.listen("Mixed Case; DROP TABLE x")
            let pool = PostgresPool(configuration: PostgresPoolConfiguration(conninfo: url, maxConnections: 2))
            defer { pool.close() }
            try await pool.withConnection { session in
                try await session.notify(channel: "task_ready", payload: "wf-1")
                try await session.notify(channel: "not_listened", payload: "ignored")
                try await session.notify(channel: "Mixed Case; DROP TABLE x", payload: "ü")
            }
            // A notification sent in a transaction arrives only when it commits.
            try await pool.withTransaction { tx in try await tx.notify(channel: "task_ready", payload: "committed") }
            await #expect(throws: Boom.self) {
                try await pool.withTransaction { tx in
                    try await tx.notify(channel: "task_ready", payload: "rolled back")
                    throw Boom()
                }
            }
            try await pool.withConnection { try await $0.notify(channel: "task_ready", payload: "last") }

            let received = await collector.notifications(atLeast: 4)
            #expect(received.map(\.channel) == ["task_ready", "Mixed Case; DROP TABLE x", "task_ready", "task_ready"])
            #expect(received.map(\.payload) == ["wf-1", "ü", "committed", "last"])
        }
    }

    @Test func listenerReconnectsAndListensAgain() async throws {
        try await TestDatabase.withDatabase { url in
            let listener = try PostgresListener(
                conninfo: url, reconnectBackoff: Backoff(initial: .milliseconds(20), maximum: .milliseconds(200)))
            defer { listener.close() }
            try await listener.listen("wake")
            let pool = PostgresPool(configuration: PostgresPoolConfiguration(conninfo: url, maxConnections: 2))
            defer { pool.close() }
            let collector = EventCollector(listener.events)
            try await pool.withConnection { try await $0.notify(channel: "wake", payload: "before") }
            #expect(await collector.notifications(atLeast: 1).map(\.payload) == ["before"])

            // Kill the listener's server process: it must notice, reconnect and LISTEN again.
            let oldPID = listener.backendPID
            try await pool.withConnection { try await $0.query("SELECT pg_terminate_backend($1)", [oldPID]) }
            #expect(await collector.wait { $0.contains(.reconnected) }.contains(.reconnected))
            #expect(listener.backendPID != oldPID)
            try await pool.withConnection { try await $0.notify(channel: "wake", payload: "after") }
            #expect(await collector.notifications(atLeast: 2).map(\.payload) == ["before", "after"])
        }
    }
}

/// Collects a listener's events in the background so tests can wait for them with a timeout.
final class EventCollector: Sendable {
    private final class Storage: Sendable {
        let events = Mutex<[PostgresListener.Event]>([])
    }
    private let storage = Storage()
    private let consumer: Task<Void, Never>

    init(_ stream: AsyncStream<PostgresListener.Event>) {
        let storage = self.storage
        consumer = Task {
            for await event in stream { storage.events.withLock { $0.append(event) } }
        }
    }

    deinit { consumer.cancel() }

    /// Waits (up to `timeout`) until `condition` holds for the events so far; returns them.
    func wait(timeout: Duration = .seconds(10), until condition: ([PostgresListener.Event]) -> Bool) async -> [PostgresListener.Event] {
        let deadline = ContinuousClock.now + timeout
        while true {
            let snapshot = storage.events.withLock { $0 }
            if condition(snapshot) || ContinuousClock.now > deadline { return snapshot }
            try? await Task.sleep(for: .milliseconds(10))
        }
    }

    func notifications(atLeast count: Int) async -> [PostgresNotification] {
        let all = await wait { events in events.filter { if case .notification = $0 { true } else { false } }.count >= count }
        return all.compactMap { if case .notification(let notification) = $0 { notification } else { nil } }
    }
}
