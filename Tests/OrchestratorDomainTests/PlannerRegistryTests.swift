import Testing
@testable import OrchestratorDomain

@Suite("Planner registry")
struct PlannerRegistryTests {
    func registry() throws -> PlannerRegistry {
        PlannerRegistry([ExplicitPlanner(), CatalogPlanner(catalog: try CatalogFixtures.agentTeam()), DelegatedPlanner()])
    }

    @Test func explicitGraphGoesToTheExplicitPlanner() throws {
        #expect(try registry().select(for: Query(explicitGraph: CanonicalShape.linear.dag)).name == "explicit")
        #expect(try registry().select(for: Query(explicitGraph: CanonicalShape.linear.dag, plannerHint: "explicit")).name == "explicit")
    }

    @Test func contradictoryHintIsRejected() throws {
        #expect(throws: PlanningError(.invalidQuery, "the query carries an explicit graph but asks for planner `catalog`; drop the graph or the hint")) {
            try registry().select(for: Query(explicitGraph: CanonicalShape.linear.dag, plannerHint: "catalog"))
        }
    }

    @Test func hintChoosesThePlanner() throws {
        #expect(try registry().select(for: Query(text: "research x", plannerHint: "delegated")).name == "delegated")
        #expect(throws: PlanningError(.unknownPlanner, "planner `magic` is not available (registered: explicit, catalog, delegated)")) {
            try registry().select(for: Query(text: "x", plannerHint: "magic"))
        }
    }

    @Test func freeTextDefaultsToCatalogThenDelegated() throws {
        #expect(try registry().select(for: Query(text: "research x")).name == "catalog")
        let withoutCatalog = PlannerRegistry([ExplicitPlanner(), DelegatedPlanner()])
        #expect(try withoutCatalog.select(for: Query(text: "research x")).name == "delegated")
        #expect(throws: PlanningError.self) { try PlannerRegistry([ExplicitPlanner()]).select(for: Query(text: "x")) }
    }

    @Test func planEndToEnd() throws {
        let result = try registry().plan(Query(text: "What is a DAG?"), context: PlanningContext())
        #expect(result.metadata.planner == "catalog")
        #expect(result.analysis.topologicalOrder == ["web_search", "answer_from_snippets"])
    }
}
