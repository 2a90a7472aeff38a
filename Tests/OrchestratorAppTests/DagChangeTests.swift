import OrchestratorApp
import OrchestratorDomain
import Testing

@Suite struct DagChangeTests {
    let base = Dag(
        tasks: [TaskSpec(key: "a"), TaskSpec(key: "b"), TaskSpec(key: "c")],
        edges: [Edge(from: "a", to: "b"), Edge(from: "b", to: "c")])

    @Test func addsAndRemovesTasksAndEdges() throws {
        let change = DagChange(
            addTasks: [TaskSpec(key: "d")], removeTasks: ["c"], addEdges: [Edge(from: "b", to: "d")], removeEdges: [])
        let result = try change.applied(to: base)
        #expect(result.tasks.map(\.key) == ["a", "b", "d"])
        #expect(result.edges == [Edge(from: "a", to: "b"), Edge(from: "b", to: "d")])
    }

    @Test func removingATaskDropsItsEdges() throws {
        let result = try DagChange(removeTasks: ["b"]).applied(to: base)
        #expect(result.edges.isEmpty)
    }

    @Test func reportsEveryUnknownReferenceAtOnce() {
        let change = DagChange(removeTasks: ["x", "y"], removeEdges: [Edge(from: "a", to: "c")])
        #expect {
            try change.applied(to: base)
        } throws: { error in
            guard case .invalidArgument(let message, _) = error as? AppError else { return false }
            return message.contains("3 problems") && message.contains("\"x\"") && message.contains("\"y\"") && message.contains("a → c")
        }
    }

    @Test func aTaskCannotBeRemovedAndAddedBackInOneUpdate() {
        let change = DagChange(addTasks: [TaskSpec(key: "c", description: "replacement")], removeTasks: ["c"])
        #expect {
            try change.applied(to: base)
        } throws: { error in
            guard case .invalidArgument(let message, _) = error as? AppError else { return false }
            return message.contains("add_tasks and remove_tasks both name \"c\"")
        }
        // In two updates it is a new task.
        let removed = try? DagChange(removeTasks: ["c"]).applied(to: base)
        #expect(removed.map { try? DagChange(addTasks: [TaskSpec(key: "c")]).applied(to: $0) }??.tasks.map(\.key) == ["a", "b", "c"])
    }

    @Test func anEdgeAlreadyThereIsNamedAndOneAddedTwiceIsDropped() throws {
        let change = DagChange(addEdges: [Edge(from: "a", to: "b"), Edge(from: "a", to: "c"), Edge(from: "a", to: "c")])
        #expect {
            try change.applied(to: base)
        } throws: { error in
            guard case .invalidArgument(let message, _) = error as? AppError else { return false }
            return message.contains("1 problem:") && message.contains("the update adds a → b, which is already in the current DAG")
        }
        let twice = try DagChange(addEdges: [Edge(from: "a", to: "c"), Edge(from: "a", to: "c")]).applied(to: base)
        #expect(twice.edges == base.edges + [Edge(from: "a", to: "c")])
        // Removed and added back in one update: a no-op, not a problem.
        let same = try DagChange(addEdges: [Edge(from: "a", to: "b")], removeEdges: [Edge(from: "a", to: "b")]).applied(to: base)
        #expect(same.edges.count == 2)
    }

    /// An edge of a task the same update removes was "already in the current DAG" (a → b, a
    /// removed) or an edge to an unknown task (a → c); found by black-box testing.
    @Test func anAddedEdgeOfARemovedTaskSaysTheTaskIsRemoved() {
        for edge in [Edge(from: "a", to: "b"), Edge(from: "a", to: "c"), Edge(from: "c", to: "a")] {
            #expect {
                try DagChange(removeTasks: ["a"], addEdges: [edge]).applied(to: base)
            } throws: { error in
                guard case .invalidArgument(let message, _) = error as? AppError else { return false }
                return message == "invalid DAG update: 1 problem: the update adds \(edge), but remove_tasks removes \"a\""
            }
        }
    }
}
