import Logging
import OrchestratorDomain

/// Adopts a delegated planner's answer: when the planning task of a PLANNING workflow completes,
/// its result is decoded, merged after the planning task (`adoptDelegatedPlan`) and stored as the
/// next DAG version, and the workflow becomes RUNNING.
///
/// Order of effects, and why the workflow never looks finished in between:
/// 1. `review` runs before the completion is stored. An answer that cannot be adopted turns the
///    completion into a non-retryable failure of the planning task listing every problem, so the
///    workflow fails by its policy rather than succeeding with nothing done.
/// 2. The store records the completion; the workflow stays PLANNING (the store never finishes a
///    PLANNING workflow as succeeded).
/// 3. `adoptCompleted` stores the merged graph as the next version and sets RUNNING in one
///    transaction. Should the process stop between 2 and 3, `adoptStranded` (run by the reaper)
///    finds the succeeded planning task and adopts it from its stored result.
public struct PlanAdoptionService: Sendable {
    let planning: any PlanningStore
    let workflows: any WorkflowStore
    let decode: ProposedGraphDecoder
    let limits: ValidationLimits
    /// The planning task's key (`DelegatedPlanner.taskKey`); other tasks never propose graphs.
    let generatorKey: TaskKey
    let clock: any WallClock
    let logger: Logger
    /// How long a succeeded planning task waits before the reaper adopts it on the reporter's behalf.
    let strandedAfterMillis: Int64

    public init(
        planning: any PlanningStore, workflows: any WorkflowStore, decode: @escaping ProposedGraphDecoder,
        limits: ValidationLimits = .default, generatorKey: TaskKey = "plan", clock: any WallClock = SystemWallClock(),
        strandedAfterMillis: Int64 = 5000, logger: Logger = Logger(label: "orchestrator.planning")
    ) {
        self.planning = planning
        self.workflows = workflows
        self.decode = decode
        self.limits = limits
        self.generatorKey = generatorKey
        self.clock = clock
        self.strandedAfterMillis = strandedAfterMillis
        self.logger = logger
    }

    /// What a completion means for planning.
    public enum Review: Sendable, Hashable {
        /// Not the planning task of a PLANNING workflow: an ordinary completion.
        case ordinary
        /// A planning task's adoptable answer: adopt it once the completion is stored.
        case adoptable(PlanningTask)
        /// A planning task's answer that cannot be adopted; every problem is listed.
        case rejected(message: String)
    }

    /// Looks at a completion before it is stored (step 1).
    public func review(taskID: String, result: [UInt8]) async throws -> Review {
        guard var task = try await planning.planningTask(id: taskID), task.key == generatorKey else { return .ordinary }
        task.result = result
        switch try await merge(task) {
        case .success: return .adoptable(task)
        case .failure(let rejection): return .rejected(message: rejection.message)
        }
    }

    /// Adopts a planning task's answer after its completion was stored (step 3). Failures are
    /// logged, not thrown: the executor's report already succeeded, and the reaper retries.
    public func adoptCompleted(_ task: PlanningTask) async {
        do {
            try await adopt(task)
        } catch {
            logger.warning(
                "plan adoption failed; the reaper will retry",
                metadata: ["workflow_id": "\(task.workflowID)", "error": "\(error)"])
        }
    }

    /// Adopts answers whose adoption was interrupted (run periodically by the reaper).
    /// - Returns: how many workflows left PLANNING.
    @discardableResult
    public func adoptStranded(limit: Int = 100) async throws -> Int {
        let now = clock.now()
        let stranded = try await planning.plansAwaitingAdoption(finishedBefore: now - strandedAfterMillis, limit: limit)
        var settled = 0
        for task in stranded where task.key == generatorKey {
            if try await adopt(task) { settled += 1 }
        }
        return settled
    }

    /// Merges and stores; an answer that cannot be adopted fails the workflow.
    /// - Returns: whether the workflow left PLANNING (adopted or failed).
    @discardableResult
    func adopt(_ task: PlanningTask) async throws -> Bool {
        // A concurrent adopter (the reaper, another server) may take the version first: look again.
        for _ in 0..<3 {
            switch try await merge(task) {
            case .failure(let rejection):
                logger.warning("planning answer cannot be adopted; failing the workflow",
                               metadata: ["workflow_id": "\(task.workflowID)", "problems": "\(rejection.message)"])
                try await planning.failPlanning(workflowID: task.workflowID, message: rejection.message, now: clock.now())
                return true
            case .success(nil):
                return false  // no longer PLANNING: someone else settled it
            case .success(let update?):
                do {
                    let stored = try await workflows.updateDag(update)
                    logger.info("delegated plan adopted", metadata: [
                        "workflow_id": "\(task.workflowID)", "dag_version": "\(stored.version)", "tasks": "\(stored.dag.tasks.count)",
                    ])
                    return true
                } catch StoreError.versionConflict {
                    continue
                }
            }
        }
        return false
    }

    struct Rejection: Error {
        var message: String
    }

    /// One message naming every problem: the decoder's first, then the merge's and validator's.
    static func rejection(decoding: [String], validation: PlanAdoptionError?) -> String {
        var problems = decoding
        switch validation {
        case .invalid(let failure)?:
            // Messages alone, as the API lists problems: they say what is wrong (a description
            // prefixed the domain code, "cycle: cycle: p → q → p").
            problems += failure.issues.map(\.message)
            if failure.totalIssueCount > failure.issues.count { problems.append("… and \(failure.totalIssueCount - failure.issues.count) more") }
        case let other?: problems.append(other.description)
        case nil: break
        }
        return "the proposed graph cannot be adopted (\(problems.count) problem\(problems.count == 1 ? "" : "s")): "
            + problems.joined(separator: "; ")
    }

    /// Decodes the task's result and merges it into the workflow's current version.
    /// - Returns: the update adopting it, nil when the workflow is no longer PLANNING.
    func merge(_ task: PlanningTask) async throws -> Result<DagUpdate?, Rejection> {
        guard let workflow = try await workflows.workflow(id: task.workflowID, tenant: nil), workflow.state == .planning,
            let current = try await workflows.dagVersion(workflowID: task.workflowID, version: nil)
        else { return .success(nil) }
        let proposed: ProposedGraph
        do {
            proposed = try decode(task.result ?? [])
        } catch {
            return .failure(Rejection(message: "the planning task's result is not an adoptable graph: \(error.description)"))
        }
        var merged: DagVersion
        do {
            merged = try adoptDelegatedPlan(
                current: DagVersion(number: current.version, dag: current.dag, reason: current.reason), proposed: proposed.dag,
                expectedVersion: current.version, generator: task.key, limits: limits)
        } catch {
            // The expected version is the one just read, so this lists the graph's problems.
            return .failure(Rejection(message: Self.rejection(decoding: proposed.problems, validation: error)))
        }
        guard proposed.problems.isEmpty else {
            return .failure(Rejection(message: Self.rejection(decoding: proposed.problems, validation: nil)))
        }
        // The query's constraints bind every planner: the explicit and catalog planners check
        // them when they plan; a delegated planner's answer was adopted without (found by
        // black-box testing: 5 tasks under max_tasks 3, a forbidden capability, over the cost cap).
        let violations = workflow.query.constraints.violations(of: proposed.dag)
        guard violations.isEmpty else {
            return .failure(Rejection(message: "the proposed graph breaks the query's constraints: " + violations.joined(separator: "; ")))
        }
        // The planned tasks inherit the query's priority and labels, as planners' tasks do.
        let fresh = Set(proposed.dag.tasks.map(\.key)).subtracting(current.dag.tasks.map(\.key))
        merged.dag.tasks = merged.dag.tasks.map { fresh.contains($0.key) ? workflow.query.inherited(by: $0) : $0 }
        // adoptDelegatedPlan validated the merged graph; this pass feeds the ranks, and checks the
        // inherited labels still fit each task's metadata limit.
        let validated: ValidatedDag
        do {
            validated = try DagValidator(limits: limits).validate(merged.dag)
        } catch {
            return .failure(Rejection(message: Self.rejection(decoding: [], validation: .invalid(error))))
        }
        let analysis = GraphAnalysis(validated)
        var ranks: [TaskKey: Double] = [:]
        for (id, key) in validated.index.keys.enumerated() { ranks[key] = analysis.ranks[id] }
        var update = DagUpdate(
            workflowID: task.workflowID, tenant: nil, expectedVersion: current.version, newDag: merged.dag,
            payloads: proposed.payloads.filter { fresh.contains($0.key) }, ranks: ranks, reason: merged.reason,
            actor: Actor(subject: "planner:\(task.key.rawValue)", role: "planner", tenant: task.tenant), now: clock.now())
        update.completesPlanning = true
        return .success(update)
    }
}
