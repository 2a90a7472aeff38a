import Testing
@testable import OrchestratorDomain

@Suite("Explicit planner")
struct ExplicitPlannerTests {
    let planner = ExplicitPlanner()

    @Test(arguments: CanonicalShape.allCases)
    func canonicalShapes(shape: CanonicalShape) throws {
        let result = try planner.plan(Query(explicitGraph: shape.dag), context: PlanningContext())
        #expect(Graphs.edgeSet(result.dag) == Graphs.edgeSet(shape.dag))
        #expect(result.dag.tasks.map(\.key) == shape.dag.tasks.map(\.key))
        #expect(result.analysis.levels.count == shape.depth)
        #expect(result.metadata.planner == "explicit")
        #expect(result.metadata.rationale == "graph supplied by the query: \(ExplicitPlanner.count(shape.dag.tasks.count, "task")), \(ExplicitPlanner.count(shape.dag.edges.count, "edge"))")
        #expect(ExplicitPlanner.count(1, "edge") == "1 edge" && ExplicitPlanner.count(0, "edge") == "0 edges")
    }

    @Test func normalisesDuplicatesPriorityAndLabels() throws {
        var dag = Graphs.dag(["a", "b"], edges: [("a", "b"), ("a", "b")])
        dag.tasks[1].priority = 7
        dag.tasks[1].labels = ["team": "mine"]
        let query = Query(explicitGraph: dag, priority: 3, labels: ["team": "query", "env": "test"])
        let result = try planner.plan(query, context: PlanningContext())
        #expect(result.dag.edges == [Edge("a", "b")])
        #expect(result.dag.tasks.map(\.priority) == [3, 7])
        #expect(result.dag.tasks[0].labels == ["team": "query", "env": "test"])
        #expect(result.dag.tasks[1].labels == ["team": "mine", "env": "test"])
        #expect(result.dag.tasks[0].rationale == "given in the query's graph")
        #expect(result.metadata.rationale.hasSuffix("; 1 duplicate edge dropped"))
    }

    @Test func invalidGraphIsRejectedWithAllItsReasons() throws {
        let dag = Graphs.dag(["a", "b", "c", "a", "d"], edges: [("a", "b"), ("b", "c"), ("c", "a"), ("c", "zz"), ("d", "d")])
        do {
            _ = try planner.plan(Query(explicitGraph: dag), context: PlanningContext())
            Issue.record("an invalid graph must be rejected")
        } catch {
            #expect(error.code == .invalidGraph)
            #expect(Set(error.issues.map(\.code)) == [.duplicateKey, .unknownTask, .selfLoop, .cycle])
            #expect(error.message.contains("cycle: a → b → c → a"))
            #expect(error.message.contains("refers to unknown task `zz`"))
        }
    }

    @Test func constraintsApply() {
        let query = Query(explicitGraph: CanonicalShape.linear.dag, constraints: PlanningConstraints(maxTotalCost: 2))
        #expect(throws: PlanningError(.constraintViolated, "the plan costs 3; the query allows at most 2")) {
            try planner.plan(query, context: PlanningContext())
        }
        let small = Query(explicitGraph: CanonicalShape.linear.dag, constraints: PlanningConstraints(maxTasks: 2))
        #expect(throws: PlanningError(.constraintViolated, "the plan needs 3 tasks; the query allows at most 2")) {
            try planner.plan(small, context: PlanningContext())
        }
    }

    @Test func missingGraph() {
        #expect(throws: PlanningError(.invalidQuery, "planner `explicit` needs a graph in the query (its `graph` is empty)")) {
            try planner.plan(Query(text: "hello"), context: PlanningContext())
        }
    }

    @Test func reportsTimeTakenFromTheInjectedClock() throws {
        let start = ContinuousClock.now
        let ticks = Ticker(start: start)
        let context = PlanningContext(now: { ticks.next() })
        let result = try planner.plan(Query(explicitGraph: CanonicalShape.linear.dag), context: context)
        #expect(result.metadata.duration == .milliseconds(5))
    }
}

/// A clock that advances 5 ms per reading.
final class Ticker: @unchecked Sendable {
    // Guarded by being read only from the single test thread that plans.
    private var current: ContinuousClock.Instant

    init(start: ContinuousClock.Instant) { current = start }

    func next() -> ContinuousClock.Instant {
        defer { current = current.advanced(by: .milliseconds(5)) }
        return current
    }
}
