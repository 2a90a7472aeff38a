import OrchestratorDomain
import Testing

@testable import OrchestratorApp

/// A replay (same request id) must be the same request; lists whose order means nothing may come
/// in another order, or with repeats, and still be the same (`SubmissionService.asPlanned`).
@Suite("Replay comparison")
struct ReplayComparisonTests {
    static func query(tasks: [TaskSpec], edges: [Edge], goals: [String] = ["report", "summary"]) -> Query {
        Query(text: "t", goal: Goal(artifacts: goals), explicitGraph: Dag(tasks: tasks, edges: edges))
    }

    static let original = query(
        tasks: [
            TaskSpec(key: "a", requiredCapabilities: ["gpu", "net"], inputs: ["seed", "url"], outputs: ["x", "y"]),
            TaskSpec(key: "b"), TaskSpec(key: "c"),
        ],
        edges: [Edge("a", "c"), Edge("b", "c")])

    @Test func orderAndRepeatsOfSetLikeListsDoNotMatter() {
        let reordered = Self.query(
            tasks: [
                TaskSpec(key: "c"), TaskSpec(key: "b"),
                TaskSpec(key: "a", requiredCapabilities: ["net", "gpu", "net"], inputs: ["url", "seed"], outputs: ["y", "x", "x"]),
            ],
            edges: [Edge("b", "c"), Edge("a", "c"), Edge("b", "c")], goals: ["summary", "report", "report"])
        #expect(SubmissionService.asPlanned(reordered) == SubmissionService.asPlanned(Self.original))
    }

    @Test func whatTheListsHoldStillMatters() {
        let changes = [
            Self.query(tasks: [TaskSpec(key: "a", requiredCapabilities: ["gpu"], inputs: ["seed", "url"], outputs: ["x", "y"]),
                               TaskSpec(key: "b"), TaskSpec(key: "c")], edges: [Edge("a", "c"), Edge("b", "c")]),
            Self.query(tasks: Self.original.explicitGraph!.tasks, edges: [Edge("a", "c")]),
            Self.query(tasks: Self.original.explicitGraph!.tasks, edges: [Edge("a", "c"), Edge("b", "c")], goals: ["report"]),
            Self.query(tasks: Array(Self.original.explicitGraph!.tasks.prefix(2)), edges: [Edge("a", "c"), Edge("b", "c")]),
        ]
        for changed in changes {
            #expect(SubmissionService.asPlanned(changed) != SubmissionService.asPlanned(Self.original))
        }
    }
}
