import Foundation
import NGRPC
import OrchestratorAPI
import OrchestratorApp
import OrchestratorDomain
import OrchestratorGRPC
import Testing

@Suite("PlanWorkflow")
struct PlanWorkflowTests {
    @Test func linearExplicitGraph() throws {
        let request = Fixtures.graphQuery([
            Fixtures.task("A", cost: 1), Fixtures.task("B", ["A"], cost: 2), Fixtures.task("C", ["B"], cost: 3),
        ])
        let response = try Fixtures.handler().planWorkflow(request, context: Fixtures.context())
        let dag = try #require(response.dag)
        #expect(dag.tasks.map(\.key) == ["A", "B", "C"])
        #expect(dag.tasks.map(\.dependsOn) == [[], ["A"], ["B"]])
        #expect(dag.tasks.allSatisfy { $0.rationale == "given in the query's graph" })
        #expect(dag.version == 1)
        #expect(dag.author == "planner:explicit")
        #expect(dag.createdUnixMs == 1_700_000_000_000)

        let analysis = try #require(response.analysis)
        #expect(analysis.topologicalOrder == ["A", "B", "C"])
        #expect(analysis.levels.map(\.taskKeys) == [["A"], ["B"], ["C"]])
        #expect(analysis.criticalPath == ["A", "B", "C"])
        #expect(analysis.criticalPathCost == 6)
        #expect(analysis.ranks == ["A": 6, "B": 5, "C": 3])
        #expect(analysis.maxFanIn == 1 && analysis.maxFanOut == 1)
        #expect(analysis.isolatedTasks.isEmpty)
        #expect(analysis.taskCount == 3 && analysis.edgeCount == 2)

        let planning = try #require(response.planning)
        #expect(planning.planner == "explicit")
        #expect(planning.totalCost == 6)
        #expect(planning.rationale == "graph supplied by the query: 3 tasks, 2 edges")
    }

    @Test func branchesAndJoins() throws {
        // start → (left, right) → join; `lonely` has no edges.
        let request = Fixtures.graphQuery([
            Fixtures.task("start", cost: 1), Fixtures.task("left", ["start"], cost: 5), Fixtures.task("right", ["start"], cost: 2),
            Fixtures.task("join", ["left", "right"], cost: 1), Fixtures.task("lonely", cost: 1),
        ])
        let response = try Fixtures.handler().planWorkflow(request, context: Fixtures.context())
        let analysis = try #require(response.analysis)
        #expect(analysis.levels.map(\.taskKeys) == [["start", "lonely"], ["left", "right"], ["join"]])
        #expect(analysis.criticalPath == ["start", "left", "join"])
        #expect(analysis.criticalPathCost == 7)
        #expect(analysis.maxFanIn == 2 && analysis.maxFanOut == 2)
        #expect(analysis.isolatedTasks == ["lonely"])
        #expect(analysis.edgeCount == 4)
        #expect(response.dag?.tasks.first { $0.key == "join" }?.dependsOn == ["left", "right"])
    }

    @Test func catalogQueryFromFreeText() throws {
        let request = Orchestrator_V1_PlanWorkflowRequest(query: Orchestrator_V1_Query(text: "Research the state of Rust async runtimes"))
        let response = try Fixtures.handler().planWorkflow(request, context: Fixtures.context())
        let dag = try #require(response.dag)
        #expect(
            response.analysis?.topologicalOrder == [
                "web_search", "fetch_pages", "extract_facts", "summarise_sources", "synthesise_report", "review_report",
            ])
        #expect(response.planning?.planner == "catalog")
        #expect(response.planning?.totalCost == 18)
        #expect(
            response.planning?.warnings == [
                "`summaries`: chose `summarise_sources` (route cost 10) over `deep_research` (route cost 20) because it is cheaper"
            ])
        // Every task says why it is there, carries its capability's description and its parameters.
        #expect(dag.tasks.allSatisfy { !$0.rationale.isEmpty })
        let search = try #require(dag.tasks.first { $0.key == "web_search" })
        #expect(search.description == "search the web for the question")
        #expect(search.requiredCapabilities == ["search"])
        #expect(search.timeouts?.startToCloseMs == 30_000)
        #expect(String(decoding: search.payload, as: UTF8.self).contains(#""input.question":"Research the state of Rust async runtimes""#))
        #expect(dag.tasks.first { $0.key == "review_report" }?.dependsOn.sorted() == ["extract_facts", "synthesise_report"])
    }

    @Test func forbiddenExecutorCapabilityReroutesTheCatalogPlan() throws {
        // Without the `search` executor capability the cheap route is closed; with seed URLs the planner
        // crawls them instead and answers from the reviewed report.
        let request = Orchestrator_V1_PlanWorkflowRequest(
            query: Orchestrator_V1_Query(
                text: "what is a fencing token?", inputs: ["urls": "https://example.org"],
                constraints: Orchestrator_V1_Constraints(forbiddenCapabilities: ["search"])))
        let response = try Fixtures.handler().planWorkflow(request, context: Fixtures.context())
        let keys = response.dag?.tasks.map(\.key) ?? []
        #expect(keys.contains("crawl_seed_urls") && keys.contains("answer_from_report"))
        #expect(response.dag?.tasks.allSatisfy { !$0.requiredCapabilities.contains("search") } == true)

        // Without seed URLs nothing can produce the answer, and the message says what is missing.
        var closed = request
        closed.query?.inputs = [:]
        let status = try #require(try Fixtures.failure(closed))
        #expect(status.code == .invalidArgument)
        #expect(status.message.hasPrefix("cannot plan the query: cannot produce `answer`"))
        #expect(status.message.contains("capabilities excluded by the query: `web_search`"))
    }

    @Test func explicitGraphBreakingCapabilityConstraints() throws {
        var request = Fixtures.graphQuery([
            Orchestrator_V1_TaskSpec(key: "a", requiredCapabilities: ["gpu"]),
            Orchestrator_V1_TaskSpec(key: "b", requiredCapabilities: ["cpu"]),
        ])
        request.query?.constraints = Orchestrator_V1_Constraints(allowedCapabilities: ["cpu"])
        let status = try #require(try Fixtures.failure(request))
        #expect(status.code == .invalidArgument)
        #expect(status.message == "cannot plan the query: task `a` requires `gpu`, which the query's constraints rule out")
    }

    @Test func unreachableGoalNamesTheMissingArtifacts() throws {
        let request = Orchestrator_V1_PlanWorkflowRequest(query: Orchestrator_V1_Query(goals: ["translated_report"], planner: .catalog))
        let status = try #require(try Fixtures.failure(request))
        #expect(status.code == .invalidArgument)
        #expect(status.message.contains("nothing produces `target_language`"))
        let problems = try #require(status.details.flatMap(StatusDetails.decodeProblems))
        #expect(problems.map(\.code) == ["UNREACHABLE_GOAL"])
    }

    @Test func cycleNamesItsPath() throws {
        let status = try #require(
            try Fixtures.failure(
                Fixtures.graphQuery([
                    Fixtures.task("a", ["c"]), Fixtures.task("b", ["a"]), Fixtures.task("c", ["b"]),
                ])))
        #expect(status.code == .invalidArgument)
        #expect(status.message.hasPrefix("invalid DAG: cycle: a → b → c → a"))
        let problems = try #require(status.details.flatMap(StatusDetails.decodeProblems))
        #expect(problems.map(\.code) == ["CYCLE"])
        #expect(problems.first?.taskKeys == ["a", "b", "c"])
    }

    @Test func everyProblemIsReportedAtOnce() throws {
        // A duplicate key, an unknown dependency, a self-dependency, a cycle and a bad field, in one request.
        let status = try #require(
            try Fixtures.failure(
                Fixtures.graphQuery([
                    Fixtures.task("a", ["b"]), Fixtures.task("b", ["a"]), Fixtures.task("x", ["y"]),
                    Fixtures.task("s", ["s"]), Fixtures.task("x"),
                    Orchestrator_V1_TaskSpec(key: "j", retry: Orchestrator_V1_RetryPolicy(jitter: 2)),
                ])))
        #expect(status.code == .invalidArgument)
        let problems = try #require(status.details.flatMap(StatusDetails.decodeProblems))
        #expect(Set(problems.map(\.code)) == ["UNKNOWN_DEPENDENCY", "SELF_LOOP", "INVALID_FIELD", "DUPLICATE_KEY", "CYCLE"])
        #expect(status.message.hasPrefix("invalid DAG: 5 problems: "))
        for fragment in [
            "task `x` depends on unknown task `y`", "task `s` depends on itself", "retry.jitter is 2.0",
            "reuses key `x`", "cycle: a → b → a",
        ] {
            #expect(status.message.contains(fragment), "missing \(fragment) in \(status.message)")
        }
        #expect(problems.first { $0.code == "UNKNOWN_DEPENDENCY" }?.taskKeys == ["x", "y"])
    }

    @Test func problemsAreCountedBeyondTheCap() throws {
        let tasks = (0..<300).map { Fixtures.task("t\($0)", ["missing\($0)"]) }
        do {
            _ = try Fixtures.handler().plan(Orchestrator_V1_Query(graph: Orchestrator_V1_Dag(tasks: tasks)))
            Issue.record("planned a graph with 300 unknown dependencies")
        } catch let error as RequestValidationError {
            #expect(error.totalCount == 300)
            #expect(error.problems.count == 100)
            #expect(error.problems.first?.message == "task `t0` depends on unknown task `missing0`")
        }
        let status = try #require(try Fixtures.failure(Fixtures.graphQuery(tasks)))
        #expect(status.message.hasPrefix("invalid DAG: 300 problems: task `t0` depends on unknown task `missing0`; "))
        #expect(status.message.hasSuffix(" more"))
    }

    @Test func unknownDependencyAloneIsNamed() throws {
        let status = try #require(try Fixtures.failure(Fixtures.graphQuery([Fixtures.task("x", ["y"])])))
        #expect(status.code == .invalidArgument)
        #expect(status.message == "invalid DAG: task `x` depends on unknown task `y`")
    }

    /// Found by black-box testing: a query-level field's problem was reported as "invalid DAG".
    @Test func aQueryFieldProblemBesideAValidGraphIsAnInvalidQuery() throws {
        var request = Fixtures.graphQuery([Fixtures.task("a")])
        request.query?.failurePolicy = .unrecognized(99)
        let status = try #require(try Fixtures.failure(request))
        #expect(status.code == .invalidArgument)
        #expect(status.message == "invalid query: failure_policy is 99, which this server does not know")
        request.query?.graph?.tasks.append(Fixtures.task("a"))
        #expect(try Fixtures.failure(request)?.message.hasPrefix("invalid DAG: 2 problems: failure_policy is 99") == true)
    }

    @Test func duplicateKeys() throws {
        let status = try #require(try Fixtures.failure(Fixtures.graphQuery([Fixtures.task("a"), Fixtures.task("a"), Fixtures.task("a")])))
        #expect(status.code == .invalidArgument)
        #expect(status.message.hasPrefix("invalid DAG: 2 problems: task #1 reuses key `a`"))
        let problems = try #require(status.details.flatMap(StatusDetails.decodeProblems))
        #expect(problems.map(\.code) == ["DUPLICATE_KEY", "DUPLICATE_KEY"])
    }

    @Test(arguments: [Orchestrator_V1_PlannerKind.explicit, .unspecified])
    func emptyGraph(_ planner: Orchestrator_V1_PlannerKind) throws {
        let status = try #require(try Fixtures.failure(Fixtures.graphQuery([], planner: planner)))
        #expect(status.code == .invalidArgument)
        let problems = try #require(status.details.flatMap(StatusDetails.decodeProblems))
        #expect(problems.map(\.code) == ["EMPTY_GRAPH"])
        #expect(status.message == "invalid DAG: the graph has no tasks; a workflow needs at least one task")
    }

    @Test func missingQueryAndContradictions() throws {
        let missing = try #require(try Fixtures.failure(Orchestrator_V1_PlanWorkflowRequest()))
        #expect(missing.code == .invalidArgument)
        #expect(missing.message == "invalid query: the request has no query")

        var contradictory = Fixtures.graphQuery([Fixtures.task("a")], planner: .catalog)
        contradictory.query?.text = "research x"
        let status = try #require(try Fixtures.failure(contradictory))
        #expect(status.code == .invalidArgument)
        #expect(status.message.contains("carries an explicit graph but asks for planner `catalog`"))

        let noGoal = try #require(try Fixtures.failure(.init(query: Orchestrator_V1_Query(text: "bake a cake"))))
        #expect(noGoal.code == .invalidArgument)
        #expect(noGoal.details.flatMap(StatusDetails.decodeProblems)?.map(\.code) == ["NO_GOAL"])
    }

    @Test func delegatedPlan() throws {
        let response = try Fixtures.handler().planWorkflow(
            .init(query: Orchestrator_V1_Query(text: "something new", planner: .delegated)), context: Fixtures.context())
        #expect(response.planning?.planner == "delegated")
        #expect(response.dag?.tasks.map(\.requiredCapabilities) == [["planner"]])
    }

    @Test func explicitPayloadsAreKept() throws {
        var a = Fixtures.task("a")
        a.payload = Array("{}".utf8)
        let response = try Fixtures.handler().planWorkflow(
            Fixtures.graphQuery([a, Fixtures.task("b", ["a"])]), context: Fixtures.context())
        #expect(response.dag?.tasks.map(\.payload) == [Array("{}".utf8), []])
    }

    @Test func standardSetupLoadsTheSampleCatalog() throws {
        let path = Fixtures.repositoryRoot.appendingPathComponent(PlannerSetup.defaultCatalogPath).path
        let setup = try PlannerSetup.standard(catalogPath: path, logger: .init(label: "test"))
        #expect(setup.registry.names == ["explicit", "catalog", "delegated"])
        #expect(setup.catalog?.name == "agent-team")
        #expect(throws: PlannerSetup.CatalogLoadError.self) {
            _ = try PlannerSetup.standard(catalogPath: "/nonexistent/catalog.json", logger: .init(label: "test"))
        }
    }

    /// Found by black-box testing: a catalog that is not JSON said "(top level): The given data was
    /// not valid JSON." and nothing about where.
    @Test func aCatalogThatIsNotJSONIsNamedWithWhereItStopsParsing() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("catalog-\(UInt32.random(in: 0...UInt32.max)).json")
        try Data("{\n  \"name\": \"x\",\n  \"capabilities\": [ @ ]\n}".utf8).write(to: path)
        defer { try? FileManager.default.removeItem(at: path) }
        let error = #expect(throws: PlannerSetup.CatalogLoadError.self) { _ = try PlannerSetup.loadCatalog(path: path.path) }
        #expect(error?.problems == ["not valid JSON: invalid value at line 3, column 21"], "\(String(describing: error))")
    }
}
