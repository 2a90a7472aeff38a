public import OrchestratorAPI
public import OrchestratorApp
public import OrchestratorDomain

// Enum mappings between the API and the domain/application. Domain → API is total (exhaustive switches
// without `default`, so a new case fails to compile until it is mapped). API → domain returns nil for
// UNSPECIFIED and values this build does not know; callers decide whether that is a default or an error.

extension Orchestrator_V1_TaskState {
    /// The API state of a stored task. A READY task still waiting out its retry backoff shows as
    /// RETRY_WAIT (the domain keeps such tasks READY with a not-before time).
    public init(_ state: TaskState, availableAt: UnixMillis? = nil, now: UnixMillis? = nil) {
        switch state {
        case .pending: self = .pending
        case .ready:
            if let availableAt, let now, availableAt > now { self = .retryWait } else { self = .ready }
        case .leased: self = .leased
        case .running: self = .running
        case .succeeded: self = .succeeded
        case .failed: self = .failed
        case .cancelled: self = .cancelled
        case .skipped: self = .skipped
        }
    }

    /// The domain state; RETRY_WAIT is a READY task with a future `availableAt`, so it maps to `.ready`.
    public var domainState: TaskState? {
        switch self {
        case .pending: .pending
        case .ready, .retryWait: .ready
        case .leased: .leased
        case .running: .running
        case .succeeded: .succeeded
        case .failed: .failed
        case .cancelled: .cancelled
        case .skipped: .skipped
        case .unspecified, .unrecognized: nil
        }
    }
}

extension Orchestrator_V1_WorkflowState {
    /// The API has no "accepted, not yet planned" state: a pending workflow is reported as PLANNING,
    /// which is what it is waiting for.
    public init(_ state: WorkflowState) {
        switch state {
        case .pending, .planning: self = .planning
        case .running: self = .running
        case .succeeded: self = .succeeded
        case .failed: self = .failed
        case .cancelled: self = .cancelled
        }
    }

    public var domainState: WorkflowState? {
        switch self {
        case .planning: .planning
        case .running: .running
        case .succeeded: .succeeded
        case .failed: .failed
        case .cancelled: .cancelled
        case .unspecified, .unrecognized: nil
        }
    }

    /// The domain states a list filter on this API state selects (PLANNING also selects pending
    /// workflows, since those are reported as PLANNING).
    public var domainStates: Set<WorkflowState> {
        switch self {
        case .planning: [.pending, .planning]
        default: domainState.map { [$0] } ?? []
        }
    }
}

extension Orchestrator_V1_FailurePolicy {
    public init(_ policy: FailurePolicy) {
        switch policy {
        case .failFast: self = .failFast
        case .continueIndependent: self = .continueIndependent
        }
    }

    /// nil for UNSPECIFIED (the server default, fail fast, applies) and unknown values.
    public var domainPolicy: FailurePolicy? {
        switch self {
        case .failFast: .failFast
        case .continueIndependent: .continueIndependent
        case .unspecified, .unrecognized: nil
        }
    }
}

extension Orchestrator_V1_PlannerKind {
    /// The API kind of a planner name; names of planners the API cannot name map to UNSPECIFIED.
    public init(plannerName: String?) {
        switch plannerName {
        case ExplicitPlanner.defaultName: self = .explicit
        case CatalogPlanner.defaultName: self = .catalog
        case DelegatedPlanner.defaultName: self = .delegated
        default: self = .unspecified
        }
    }

    /// The registry name of the planner this kind asks for; nil for UNSPECIFIED (the server chooses)
    /// and unknown values.
    public var plannerName: String? {
        switch self {
        case .explicit: ExplicitPlanner.defaultName
        case .catalog: CatalogPlanner.defaultName
        case .delegated: DelegatedPlanner.defaultName
        case .unspecified, .unrecognized: nil
        }
    }
}

extension Orchestrator_V1_EventType {
    public init(_ kind: EventKind) {
        switch kind {
        case .workflowSubmitted: self = .workflowSubmitted
        case .workflowPlanned: self = .workflowPlanned
        case .workflowSucceeded: self = .workflowSucceeded
        case .workflowFailed: self = .workflowFailed
        case .workflowCancelled: self = .workflowCancelled
        case .dagUpdated: self = .dagUpdated
        case .taskReady: self = .taskReady
        case .taskLeased: self = .taskLeased
        case .taskRunning: self = .taskRunning
        case .taskProgress: self = .taskProgress
        case .taskSucceeded: self = .taskSucceeded
        case .taskFailed: self = .taskFailed
        case .taskRetryScheduled: self = .taskRetryScheduled
        case .taskLeaseExpired: self = .taskLeaseExpired
        case .taskCancelled: self = .taskCancelled
        case .taskSkipped: self = .taskSkipped
        case .reportRefused: self = .reportRefused
        case .taskLeaseResumed: self = .taskLeaseResumed
        case .unrecognized: self = .unspecified
        }
    }

    public var eventKind: EventKind? {
        switch self {
        case .workflowSubmitted: .workflowSubmitted
        case .workflowPlanned: .workflowPlanned
        case .workflowSucceeded: .workflowSucceeded
        case .workflowFailed: .workflowFailed
        case .workflowCancelled: .workflowCancelled
        case .dagUpdated: .dagUpdated
        case .taskReady: .taskReady
        case .taskLeased: .taskLeased
        case .taskRunning: .taskRunning
        case .taskProgress: .taskProgress
        case .taskSucceeded: .taskSucceeded
        case .taskFailed: .taskFailed
        case .taskRetryScheduled: .taskRetryScheduled
        case .taskLeaseExpired: .taskLeaseExpired
        case .taskCancelled: .taskCancelled
        case .taskSkipped: .taskSkipped
        case .reportRefused: .reportRefused
        case .taskLeaseResumed: .taskLeaseResumed
        case .unspecified, .unrecognized: nil
        }
    }
}
