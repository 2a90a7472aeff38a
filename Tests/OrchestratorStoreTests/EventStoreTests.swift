import Foundation
import OrchestratorApp
import OrchestratorDomain
import OrchestratorStore
import PostgresClient
import Testing

@Suite("PostgresEventStore and PostgresChangeFeed")
struct EventStoreTests {
    @Test("events are ordered, filtered and resumable from any sequence")
    func orderedAndResumable() async throws {
        try await TestDatabase.withStore { store, pool in
            let one = try await store.createWorkflow(Fixtures.workflow(dag: Fixtures.diamond)).workflow.workflowID
            let two = try await store.createWorkflow(Fixtures.workflow(tenant: "globex", dag: Fixtures.diamond)).workflow.workflowID
            let all = try await Fixtures.allEvents(store, pool)
            #expect(all.count == 6)
            #expect(all.map(\.sequence) == all.map(\.sequence).sorted())
            #expect(Set(all.map(\.sequence)).count == all.count)
            // Resume after each position: exactly the rest, in order.
            for index in all.indices {
                let rest = try await store.events(EventQuery(afterSequence: all[index].sequence, limit: 100))
                #expect(rest == Array(all[(index + 1)...]))
            }
            let paged = try await store.events(EventQuery(afterSequence: 0, limit: 2))
            #expect(paged == Array(all.prefix(2)))
            #expect(try await store.events(EventQuery(afterSequence: 0, workflowID: two)).allSatisfy { $0.workflowID == two })
            #expect(try await store.events(EventQuery(afterSequence: 0, tenant: "acme")).map(\.workflowID) == [one, one, one])
            #expect(try await store.events(EventQuery(afterSequence: 0, workflowID: one, tenant: "globex")).isEmpty)
        }
    }

    @Test("an append waits for an open transaction's append, so later events never overtake it")
    func noOvertaking() async throws {
        try await TestDatabase.withStore(maxConnections: 6) { store, pool in
            let id = try await store.createWorkflow(Fixtures.workflow(dag: Dag(tasks: [Fixtures.task("a")]))).workflow.workflowID
            let before = try await Fixtures.allEvents(store, pool)
            // A transaction appends an event and stays open while another one tries to append and commit.
            let first = try await pool.withConnection { session -> Int64 in
                try await session.simpleQuery("BEGIN")
                let rows = try await session.query(
                    "INSERT INTO workflow_events (workflow_id, type, at) VALUES ($1, 'task_progress', now()) RETURNING seq", [id])
                let seq = try rows.first!.decode(Int64.self, column: "seq")
                let second = Task {
                    try await pool.withConnection { other in
                        try await other.query("INSERT INTO workflow_events (workflow_id, type, at) VALUES ($1, 'task_progress', now())", [id])
                    }
                }
                try await Task.sleep(for: .milliseconds(300))
                let visible = try await store.events(EventQuery(afterSequence: before.last!.sequence))
                #expect(visible.isEmpty)
                try await session.simpleQuery("COMMIT")
                _ = try await second.value
                return seq
            }
            try await Fixtures.settleEvents(pool)
            let after = try await store.events(EventQuery(afterSequence: before.last!.sequence))
            #expect(after.map(\.sequence).first == first)
            #expect(after.count == 2)
        }
    }

    @Test("a transaction that started earlier but appends later cannot overtake an open one's event")
    func olderTransactionAppendingLaterDoesNotOvertake() async throws {
        try await TestDatabase.withStore(maxConnections: 6) { store, pool in
            let id = try await store.createWorkflow(Fixtures.workflow(dag: Dag(tasks: [Fixtures.task("a")]))).workflow.workflowID
            let before = try await Fixtures.allEvents(store, pool).last!.sequence
            try await pool.withConnection { older in
                // `older` gets its transaction id first (as a completion does with its first UPDATE) ...
                try await older.simpleQuery("BEGIN")
                try await older.simpleQuery("SELECT pg_current_xact_id()")
                try await pool.withConnection { newer in
                    // ... `newer` appends an event and stays open ...
                    try await newer.simpleQuery("BEGIN")
                    try await newer.query("INSERT INTO workflow_events (workflow_id, type, at) VALUES ($1, 'task_progress', now())", [id])
                    // ... and `older` appends its event afterwards (waiting for `newer` if appends are serialised) and commits.
                    let olderAppend = Task {
                        try await older.query("INSERT INTO workflow_events (workflow_id, type, at) VALUES ($1, 'task_progress', now())", [id])
                        try await older.simpleQuery("COMMIT")
                    }
                    try await Task.sleep(for: .milliseconds(300))
                    // Whatever a reader sees now must be a gap-free prefix: never `older`'s event without `newer`'s.
                    let visible = try await store.events(EventQuery(afterSequence: before))
                    #expect(visible.isEmpty, "saw \(visible.map(\.sequence)) while an earlier sequence was still open")
                    try await newer.simpleQuery("COMMIT")
                    try await olderAppend.value
                }
            }
            try await Fixtures.settleEvents(pool)
            let after = try await store.events(EventQuery(afterSequence: before))
            #expect(after.count == 2)
            #expect(after.map(\.sequence) == after.map(\.sequence).sorted())
        }
    }

    @Test("an event type this server does not know (a newer server's) is read as unrecognized, not an error")
    func unknownEventTypeIsReadable() async throws {
        try await TestDatabase.withStore { store, pool in
            let id = try await store.createWorkflow(Fixtures.workflow(dag: Dag(tasks: [Fixtures.task("a")]))).workflow.workflowID
            try await pool.withConnection { session in
                try await session.query(
                    """
                    INSERT INTO workflow_events (workflow_id, type, at, task_key, message)
                    VALUES ($1, 'task_lease_released', now(), 'a', 'from a newer server')
                    """, [id])
            }
            let events = try await Fixtures.allEvents(store, pool, workflowID: id)
            let last = try #require(events.last)
            #expect(last.kind == .unrecognized)
            #expect(last.taskKey == "a")
            #expect(last.message == "from a newer server")
            #expect(events.dropLast().allSatisfy { $0.kind != .unrecognized })
            #expect(EventKind(storedName: "") == .unrecognized)
            #expect(EventKind(storedName: "task_ready") == .taskReady)
        }
    }

    @Test("the change feed signals ready tasks and appended events after commit")
    func changeFeed() async throws {
        try await TestDatabase.withStore { store, pool in
            let stream = store.subscribe()
            var iterator = stream.makeAsyncIterator()
            _ = try await store.createWorkflow(Fixtures.workflow(dag: Fixtures.diamond))
            var signals: [ChangeSignal] = []
            while signals.count < 2, let signal = await iterator.next() { signals.append(signal) }
            #expect(signals.contains(.tasksReady))
            let last = try await Fixtures.allEvents(store, pool).last!.sequence
            #expect(signals.contains(.eventsAppended(upTo: last)))
        }
    }
}
