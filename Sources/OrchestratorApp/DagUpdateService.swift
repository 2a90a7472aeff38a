import OrchestratorDomain

/// Makes new DAG versions: applies a change to the current graph, validates the result as a
/// whole, ranks it, and stores it if nobody else changed the graph first.
public struct DagUpdateService: Sendable {
    let workflows: any WorkflowStore
    let limits: ValidationLimits
    let signals: ChangeSignals
    let clock: any WallClock
    let budget: AssignmentBudget
    /// Whose workflows carry a planning task, and its key.
    let delegatedPlanner: (name: String, taskKey: TaskKey)

    public init(
        workflows: any WorkflowStore, limits: ValidationLimits = .default, signals: ChangeSignals, clock: any WallClock = SystemWallClock(),
        budget: AssignmentBudget = AssignmentBudget(maxAssignmentBytes: nil),
        delegatedPlanner: (name: String, taskKey: TaskKey) = (DelegatedPlanner.defaultName, DelegatedPlanner().taskKey)
    ) {
        self.delegatedPlanner = delegatedPlanner
        self.budget = budget
        self.workflows = workflows
        self.limits = limits
        self.signals = signals
        self.clock = clock
    }

    /// What is wrong with `change` against the workflow's graph at `expectedVersion` — references
    /// to what is not there and the problems of the graph it leaves — for a caller that found
    /// problems in the request itself and answers with all of them. Empty when the workflow
    /// cannot be read or has moved past `expectedVersion` (its own answer then says so).
    /// `DagChange.ownProblems` under this service's limits.
    public func ownProblems(of change: DagChange) -> [ValidationIssue] { change.ownProblems(limits: limits) }

    public func problems(workflowID: String, tenant: String?, expectedVersion: Int, change: DagChange) async -> [ValidationIssue] {
        // The query's defaults and constraints only, not its graph.
        guard let workflow = try? await workflows.workflow(id: workflowID, tenant: tenant, queryGraph: .none),
            workflow.currentDagVersion == expectedVersion,
            let current = try? await workflows.dagVersion(workflowID: workflowID, version: expectedVersion)
        else { return [] }
        let (newDag, referenceProblems) = change.inheriting(from: workflow.query).applying(to: current.dag)
        let constraintProblems = constraintIssues(workflow, newDag)
        do {
            _ = try DagValidator(limits: limits).validate(newDag)
            return referenceProblems + constraintProblems
        } catch {
            return referenceProblems + error.issues + constraintProblems
        }
    }

    /// The query's constraints bind the workflow's graph whatever made it: the planners check
    /// them, adoption checks a delegated planner's graph, and so does an update (tasks added
    /// past `max_tasks`, with a forbidden capability or over the cost cap were stored; found by
    /// black-box testing). A delegated planner's planning task is not counted, as adoption and
    /// planning do not count it.
    func constraintIssues(_ workflow: WorkflowRecord, _ dag: Dag) -> [ValidationIssue] {
        let uncounted: Set<TaskKey> = workflow.planning?.planner == delegatedPlanner.name ? [delegatedPlanner.taskKey] : []
        return workflow.query.constraints.violations(of: dag, uncounted: uncounted).map { ValidationIssue(code: .constraintViolated, message: $0) }
    }

    public func update(
        workflowID: String, tenant: String?, expectedVersion: Int, change: DagChange, reason: String, actor: Actor
    ) async throws -> (version: StoredDagVersion, analysis: GraphAnalysis) {
        guard !change.isEmpty else { throw AppError.invalidArgument(DagChange.changesNothing) }
        guard expectedVersion > 0 else { throw AppError.invalidArgument(DagChange.versionRequired) }
        let own = change.ownProblems(limits: limits)
        guard own.isEmpty else { throw AppError.invalidArgument(DagChange.listing(own.map(\.message)), issues: own) }
        do {
            guard let workflow = try await workflows.workflow(id: workflowID, tenant: tenant, queryGraph: .none) else {
                throw AppError.notFound("workflow \(workflowID) not found")
            }
            if workflow.state.isTerminal { throw AppError(StoreError.workflowFinished(workflowID, workflow.state)) }
            if workflow.state == .planning {
                // Its graph is the planning task's to propose; adoption makes the next version.
                throw AppError.failedPrecondition(
                    "workflow \(workflowID) is still planning: its DAG can be updated once the planning task's graph is adopted")
            }
            guard workflow.currentDagVersion == expectedVersion else {
                throw AppError(StoreError.versionConflict(expected: expectedVersion, current: workflow.currentDagVersion))
            }
            guard let current = try await workflows.dagVersion(workflowID: workflowID, version: expectedVersion) else {
                throw AppError.notFound("workflow \(workflowID) has no DAG version \(expectedVersion)")
            }
            // Every problem in one answer: references to what is not there, and what is wrong with
            // the graph they leave (one used to hide the other; found by black-box testing).
            let (newDag, referenceProblems) = change.inheriting(from: workflow.query).applying(to: current.dag)
            let constraintProblems = constraintIssues(workflow, newDag)
            let validated: ValidatedDag
            do {
                validated = try DagValidator(limits: limits).validate(newDag)
            } catch {
                // Structured (status details) and listed in the message, references first.
                let issues = referenceProblems + error.issues + constraintProblems
                throw AppError.invalidArgument("the updated DAG is invalid: \(error.description)", issues: issues)
            }
            let problems = referenceProblems + constraintProblems
            guard problems.isEmpty else { throw AppError.invalidArgument(DagChange.listing(problems.map(\.message)), issues: problems) }
            try budget.check(tasks: change.addTasks, payloads: change.payloads, inputs: workflow.query.providedInputs)
            let analysis = GraphAnalysis(validated)
            var ranks: [TaskKey: Double] = [:]
            for (id, key) in validated.index.keys.enumerated() { ranks[key] = analysis.ranks[id] }
            let stored = try await workflows.updateDag(DagUpdate(
                workflowID: workflowID, tenant: tenant, expectedVersion: expectedVersion, newDag: newDag,
                payloads: change.payloads, ranks: ranks, reason: reason.isEmpty ? "UpdateDag" : reason, actor: actor, now: clock.now()))
            signals.signal(.tasksReady)
            return (stored, analysis)
        } catch let error as StoreError {
            throw AppError(error)
        }
    }
}
