public import OrchestratorAPI
public import OrchestratorApp
public import OrchestratorDomain

extension Orchestrator_V1_Workflow {
    /// The API form of a stored workflow.
    ///
    /// - Parameters:
    ///   - tasks: the current version's tasks, when the request asked for them; their counts (with
    ///     RETRY_WAIT) then replace the stored counts, so the two always agree in one answer.
    ///   - dag: the current version's graph, to fill each returned task's `depends_on`.
    ///   - allowedCapabilities: the query's allowed capabilities, which the domain query does not keep.
    public init(
        _ record: WorkflowRecord, tasks: [StoredTask]? = nil, dag: Dag? = nil, allowedCapabilities: [String] = [],
        now: UnixMillis
    ) {
        self.init()
        workflowID = record.workflowID
        tenant = record.tenant
        requestID = record.requestID ?? ""
        state = Orchestrator_V1_WorkflowState(record.state)
        var answered = record.query
        if let graph = answered.explicitGraph, graph.tasks.count > QueryGraphRead.answeredGraphTasks {
            // Left out whatever read it (a replay reads it whole, a submission has it in hand).
            answered.explicitGraph = nil
            queryGraphOmitted = true
        }
        query = Orchestrator_V1_Query(answered, failurePolicy: record.failurePolicy, allowedCapabilities: allowedCapabilities)
        currentDagVersion = Int32(clamping: record.currentDagVersion)
        failurePolicy = Orchestrator_V1_FailurePolicy(record.failurePolicy)
        traceID = record.traceID
        labels = record.labels
        planning = record.planning.map(Orchestrator_V1_PlanningInfo.init)
        error = record.error ?? ""
        createdUnixMs = record.createdAt
        updatedUnixMs = record.updatedAt
        finishedUnixMs = record.finishedAt ?? 0
        submittedBy = record.submittedBy
        queryGraphOmitted = queryGraphOmitted || record.queryGraphLeftOut
        if let tasks {
            counts = Orchestrator_V1_TaskCounts(tasks: tasks, now: now)
            var upstream: [TaskKey: [TaskKey]] = [:]
            for edge in dag?.edges ?? [] { upstream[edge.to, default: []].append(edge.from) }
            self.tasks = tasks.map { Orchestrator_V1_Task($0, dependsOn: upstream[$0.spec.key] ?? [], now: now) }
        } else {
            counts = Orchestrator_V1_TaskCounts(record.counts)
        }
    }
}
