public import OrchestratorAPI
public import OrchestratorApp

extension Orchestrator_V1_WorkflowEvent {
    /// The API form of an event-log entry; absent optional fields become the proto zero values.
    public init(_ event: StoredEvent) {
        self.init()
        sequence = event.sequence
        workflowID = event.workflowID
        type = Orchestrator_V1_EventType(event.kind)
        atUnixMs = event.at
        taskID = event.taskID ?? ""
        taskKey = event.taskKey ?? ""
        taskState = event.taskRetryWaiting ? .retryWait : event.taskState.map { Orchestrator_V1_TaskState($0) } ?? .unspecified
        attempt = Int32(clamping: event.attempt ?? 0)
        executorID = event.executorID ?? ""
        workflowState = event.workflowState.map { Orchestrator_V1_WorkflowState($0) } ?? .unspecified
        dagVersion = Int32(clamping: event.dagVersion ?? 0)
        message = event.message
        progress = event.progress ?? 0
        traceID = event.traceID
        actor = event.actor.map(Orchestrator_V1_Actor.init)
        requestTraceID = event.requestTraceID ?? ""
    }
}

extension Orchestrator_V1_Actor {
    public init(_ actor: Actor) { self.init(subject: actor.subject, role: actor.role, tenant: actor.tenant) }
}
