import Foundation
import OrchestratorApp
import OrchestratorDomain
import OrchestratorStore
import PostgresClient
import Testing

@Suite("Large DAGs")
struct LargeDagTests {
    @Test("a 100,000-task DAG is stored in one batched transaction and reads back equal")
    func hundredThousandTasks() async throws {
        try await TestDatabase.withStore { store, pool in
            // Layers of 1,000 tasks; each task depends on two tasks of the layer before.
            let width = 1_000, layers = 100
            var tasks: [TaskSpec] = []
            var edges: [Edge] = []
            for layer in 0..<layers {
                for index in 0..<width {
                    let key = TaskKey("L\(layer)-\(index)")
                    tasks.append(Fixtures.task(key, capabilities: index % 3 == 0 ? ["gpu"] : [], priority: index % 5))
                    if layer > 0 {
                        edges.append(Edge(TaskKey("L\(layer - 1)-\(index)"), key))
                        edges.append(Edge(TaskKey("L\(layer - 1)-\((index + 1) % width)"), key))
                    }
                }
            }
            let dag = Dag(tasks: tasks, edges: edges)
            let created = try await store.createWorkflow(Fixtures.workflow(dag: dag))
            let id = created.workflow.workflowID
            #expect(created.workflow.counts[.ready] == width)
            #expect(created.workflow.counts.total == 100_000)

            let stored = try await store.tasks(workflowID: id)
            #expect(stored.count == 100_000)
            let byKey = Dictionary(uniqueKeysWithValues: stored.map { ($0.spec.key, $0) })
            #expect(tasks.allSatisfy { byKey[$0.key]?.spec == $0 })
            #expect(stored.allSatisfy { $0.state == ($0.unfinishedUpstream == 0 ? .ready : .pending) })
            #expect(stored.filter { $0.unfinishedUpstream == 2 }.count == 99_000)

            let idToKey = Dictionary(uniqueKeysWithValues: stored.map { ($0.taskID, $0.spec.key) })
            let edgeRows = try await pool.withConnection { session in
                try await session.query("SELECT upstream_task_id, downstream_task_id FROM edges WHERE workflow_id = $1", [id])
            }
            var readEdges = Set<Edge>()
            for row in edgeRows {
                let from = idToKey[try row.decode(String.self, column: "upstream_task_id")]!
                let to = idToKey[try row.decode(String.self, column: "downstream_task_id")]!
                readEdges.insert(Edge(from, to))
            }
            #expect(readEdges == Set(edges))
            #expect(try await store.dagVersion(workflowID: id, version: 1)?.dag == dag)
        }
    }
}
