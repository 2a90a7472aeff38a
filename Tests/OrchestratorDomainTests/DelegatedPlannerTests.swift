import Testing
@testable import OrchestratorDomain

@Suite("Delegated planner and plan adoption")
struct DelegatedPlannerTests {
    /// Version 1 of a delegated workflow: just the planning task.
    func planningVersion(_ query: Query = Query(text: "organise a conference")) throws -> DagVersion {
        let result = try DelegatedPlanner().plan(query, context: PlanningContext())
        return DagVersion(number: 1, dag: result.dag, reason: "planned by delegated")
    }

    @Test func planIsOnePlanningTask() throws {
        let query = Query(text: "organise a conference", goal: Goal(artifacts: ["agenda"]), providedInputs: ["city": "Lyon"], priority: 4)
        let result = try DelegatedPlanner().plan(query, context: PlanningContext())
        #expect(result.dag.tasks.count == 1 && result.dag.edges.isEmpty)
        let task = result.dag.tasks[0]
        #expect(task.key == "plan")
        #expect(task.requiredCapabilities == ["planner"])
        #expect(task.priority == 4)
        #expect(task.metadata == ["query.text": "organise a conference", "query.goal": "agenda", "input.city": "Lyon"])
        #expect(result.metadata.planner == "delegated")
        #expect(result.metadata.rationale == "delegated: one planning task for an executor with capability `planner`")
    }

    /// The planning task is the planner's own work, not the plan: bounds on the plan's size and
    /// cost leave it out when planning, adopting and updating alike.
    @Test func thePlanningTaskCountsTowardNeitherBound() throws {
        let bounded = Query(text: "organise a conference", constraints: PlanningConstraints(maxTotalCost: 0.5, maxTasks: 1))
        #expect(try DelegatedPlanner().plan(bounded, context: PlanningContext()).dag.tasks.map(\.key) == ["plan"])
        var merged = try planningVersion().dag
        merged.tasks.append(TaskSpec(key: "work", estimatedCost: 0.5))
        #expect(bounded.constraints.violations(of: merged, uncounted: ["plan"]).isEmpty)
        #expect(bounded.constraints.violations(of: merged) == [
            "the plan needs 2 tasks; the query allows at most 1", "the plan costs 1.5; the query allows at most 0.5",
        ])
    }

    /// A cost cap compares sums of decimals: 0.1 + 0.2 is 0.30000000000000004 in binary.
    @Test func aSumOfDecimalsAtTheCostCapIsWithinIt() {
        let capped = PlanningConstraints(maxTotalCost: 0.3)
        let dag = Dag(tasks: [TaskSpec(key: "a", estimatedCost: 0.1), TaskSpec(key: "b", estimatedCost: 0.2)])
        #expect(capped.countViolations(of: dag).isEmpty)
        #expect(PlanningConstraints(maxTotalCost: 0.29).countViolations(of: dag) == ["the plan costs 0.3; the query allows at most 0.29"])
    }

    @Test func emptyQueryIsRejected() {
        #expect(throws: PlanningError.self) { try DelegatedPlanner().plan(Query(), context: PlanningContext()) }
    }

    /// The planning task's metadata limit is named in the caller's terms (text, inputs), not as a
    /// task `plan` with labels the caller never sent; a query that fits plans as before.
    @Test func aQueryTooLargeForThePlanningTaskIsRefusedNamingWhatItCarries() throws {
        var context = PlanningContext()
        context.limits.maxMetadataBytesPerTask = 100
        let fits = Query(text: String(repeating: "a", count: 90))  // 90 + "query.text" = 100
        #expect(try DelegatedPlanner().plan(fits, context: context).dag.tasks.count == 1)
        let tooLarge = Query(text: String(repeating: "a", count: 91))
        #expect {
            try DelegatedPlanner().plan(tooLarge, context: context)
        } throws: { error in
            guard let error = error as? PlanningError else { return false }
            return error.code == .invalidQuery && error.message == "planner `delegated` hands the query's text, goal, inputs and labels to "
                + "its planning task `plan`, where with their names they may take at most 100 bytes; this query needs 101 (text 91). "
                + "Shorten them, or submit an explicit graph"
        }
        let withInputs = Query(text: "t", providedInputs: ["city": String(repeating: "b", count: 80)], labels: ["team": "x"])
        #expect {
            try DelegatedPlanner().plan(withInputs, context: context)
        } throws: { error in
            (error as? PlanningError)?.message.contains("needs 106 (text 1, inputs 80, labels 5)") == true
        }
    }

    @Test(arguments: CanonicalShape.allCases)
    func adoptsCanonicalShapesAfterThePlanningTask(shape: CanonicalShape) throws {
        let current = try planningVersion()
        let next = try adoptDelegatedPlan(current: current, proposed: shape.dag, expectedVersion: 1, generator: "plan")
        #expect(next.number == 2)
        #expect(next.reason == "adopted \(shape.dag.tasks.count) tasks proposed by `plan`")
        #expect(next.dag.tasks.map(\.key) == ["plan"] + shape.dag.tasks.map(\.key))
        // The proposed edges, plus plan → every proposed task without a proposed upstream task.
        let targets = Set(shape.dag.edges.map(\.to))
        let roots = shape.dag.tasks.map(\.key).filter { !targets.contains($0) }
        let expected = Graphs.edgeSet(shape.dag) + roots.map { "plan>\($0)" }
        #expect(Graphs.edgeSet(next.dag) == expected.sorted())
        let analysis = GraphAnalysis(try Graphs.validate(next.dag))
        #expect(analysis.levels.count == shape.depth + 1)
        #expect(analysis.topologicalOrder.first == "plan")
    }

    @Test func generatedWorkSitsBetweenTheGeneratorAndItsOldSuccessors() throws {
        let current = DagVersion(number: 3, dag: Graphs.dag(["gen", "after", "other"], edges: [("gen", "after")]), reason: "x")
        let proposed = Graphs.dag(["p1", "p2", "p3"], edges: [("p1", "p2"), ("other", "p3")])
        let next = try adoptDelegatedPlan(current: current, proposed: proposed, expectedVersion: 3, generator: "gen", reason: "expanded")
        #expect(next.number == 4 && next.reason == "expanded")
        #expect(Graphs.edgeSet(next.dag) == [
            "gen>after", "gen>p1", "gen>p3", "other>p3", "p1>p2", "p2>after", "p3>after",
        ])
    }

    @Test func staleVersionIsAConflict() throws {
        let current = try planningVersion()
        #expect(throws: PlanAdoptionError.versionConflict(DagVersionConflict(expected: 1, actual: 0))) {
            try adoptDelegatedPlan(current: current, proposed: CanonicalShape.linear.dag, expectedVersion: 0, generator: "plan")
        }
    }

    @Test func unknownGenerator() throws {
        #expect(throws: PlanAdoptionError.unknownGenerator("ghost")) {
            try adoptDelegatedPlan(current: try planningVersion(), proposed: CanonicalShape.linear.dag, expectedVersion: 1, generator: "ghost")
        }
    }

    @Test func invalidProposalIsRejectedWithAllItsReasons() throws {
        let current = try planningVersion()
        // Reuses the existing key `plan`, adds a dependency to it, has a cycle, a self-loop and a dangling edge.
        let proposed = Graphs.dag(
            ["plan", "a", "b", "c"],
            edges: [("a", "plan"), ("a", "b"), ("b", "a"), ("c", "c"), ("c", "nowhere")])
        do {
            _ = try adoptDelegatedPlan(current: current, proposed: proposed, expectedVersion: 1, generator: "plan")
            Issue.record("must be rejected")
        } catch {
            guard case .invalid(let failure) = error else {
                Issue.record("expected .invalid, got \(error)")
                return
            }
            #expect(failure.issues.map(\.code) == [.duplicateKey, .modifiesExistingTask, .selfLoop, .unknownTask, .cycle])
            #expect(failure.issues[0].message == "proposed task `plan` already exists in version 1; existing tasks cannot be replaced")
            #expect(failure.issues[1].message == "proposed edge #0 (a → plan) would add a dependency to existing task `plan`")
            #expect(failure.issues.last?.taskKeys == ["a", "b"])
        }
    }

    @Test func emptyProposalIsRejected() throws {
        #expect(throws: PlanAdoptionError.self) {
            try adoptDelegatedPlan(current: try planningVersion(), proposed: Dag(), expectedVersion: 1, generator: "plan")
        }
    }

    @Test func adoptedVersionAppendsToTheWorkflow() throws {
        var workflow = Workflow(id: "w", query: Query(text: "organise a conference", plannerHint: "delegated"))
        try workflow.append(try planningVersion())
        let next = try adoptDelegatedPlan(
            current: workflow.currentVersion!, proposed: CanonicalShape.linear.dag, expectedVersion: 1, generator: "plan")
        try workflow.append(next)
        #expect(workflow.versions.map(\.number) == [1, 2])
    }
}
