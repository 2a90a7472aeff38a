public import NGRPC
public import OrchestratorAPI
import OrchestratorApp
import OrchestratorDomain

extension WorkflowsService {
    /// How many bytes of payloads and results a ListTasks page holds before it ends early: well
    /// inside the 4 MiB a generated client accepts by default.
    static let taskPageBytes = 1 << 20

    /// A workflow's tasks in key order, a page at a time: GetWorkflow with `include_tasks` answers
    /// them all at once, which for a large workflow passes a default client's receive limit
    /// (found by black-box testing with grpc-go).
    public func listTasks(_ request: Orchestrator_V1_ListTasksRequest, context: ServerContext) async throws -> Orchestrator_V1_ListTasksResponse {
        try await mapped(context) {
            guard (0...1000).contains(request.pageSize) else {
                throw AppError.invalidArgument("page_size must be between 1 and 1000 (0 = 100), got \(request.pageSize)")
            }
            var wanted = Set<Orchestrator_V1_TaskState>()
            for state in request.states {
                guard state.domainState != nil else {
                    throw AppError.invalidArgument("states contains \(state.rawValue), which is not an orchestrator.v1.TaskState this server lists")
                }
                wanted.insert(state)
            }
            let record = try await existingWorkflowHead(request.workflowID, context: context)
            let page = try await workflows.taskPage(TaskPageQuery(
                workflowID: record.workflowID, states: Set(wanted.compactMap(\.domainState)),
                pageSize: request.pageSize == 0 ? 100 : Int(request.pageSize), maxBytes: Self.taskPageBytes,
                includeResults: !request.omitResults, pageToken: request.pageToken.isEmpty ? nil : request.pageToken))
            let now = clock.now()
            // READY and RETRY_WAIT are one stored state told apart by the clock: the store reads
            // both for either, and the page keeps the ones asked for.
            let tasks = page.tasks
                .map { Orchestrator_V1_Task($0, dependsOn: page.upstreamKeys[$0.taskID] ?? [], now: now) }
                .filter { wanted.isEmpty || wanted.contains($0.state) }
            return Orchestrator_V1_ListTasksResponse(tasks: tasks, nextPageToken: page.nextPageToken ?? "")
        }
    }
}
