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

    @Test("an open transaction's events stay hidden until it ends, so later events never overtake them")
    func noOvertaking() async throws {
        try await TestDatabase.withStore { store, pool in
            let id = try await store.createWorkflow(Fixtures.workflow(dag: Dag(tasks: [Fixtures.task("a")]))).workflow.workflowID
            let before = try await Fixtures.allEvents(store, pool)
            // A transaction appends an event and stays open while another one commits an event.
            let session = try await pool.withConnection { session -> Int64 in
                try await session.simpleQuery("BEGIN")
                let rows = try await session.query(
                    "INSERT INTO workflow_events (workflow_id, type, at) VALUES ($1, 'task_progress', now()) RETURNING seq", [id])
                let seq = try rows.first!.decode(Int64.self, column: "seq")
                try await pool.withConnection { other in
                    try await other.query("INSERT INTO workflow_events (workflow_id, type, at) VALUES ($1, 'task_progress', now())", [id])
                }
                let visible = try await store.events(EventQuery(afterSequence: before.last!.sequence))
                #expect(visible.isEmpty)
                try await session.simpleQuery("COMMIT")
                return seq
            }
            try await Fixtures.settleEvents(pool)
            let after = try await store.events(EventQuery(afterSequence: before.last!.sequence))
            #expect(after.map(\.sequence).first == session)
            #expect(after.count == 2)
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
