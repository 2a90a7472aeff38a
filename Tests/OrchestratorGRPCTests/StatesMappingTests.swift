import OrchestratorAPI
import OrchestratorApp
import OrchestratorDomain
import OrchestratorGRPC
import Testing

@Suite("Mappings: enums are total both ways")
struct StatesMappingTests {
    @Test(arguments: TaskState.allCases)
    func everyTaskStateMapsAndComesBack(_ state: TaskState) {
        let proto = Orchestrator_V1_TaskState(state)
        #expect(proto != .unspecified)
        #expect(proto.domainState == state)
    }

    @Test func everyAPITaskStateMapsToTheDomain() {
        let all: [Orchestrator_V1_TaskState] = (1...9).map { Orchestrator_V1_TaskState(rawValue: $0) }
        for proto in all {
            let domain = proto.domainState
            #expect(domain != nil, "\(proto)")
            // Back to the API: identical except RETRY_WAIT, which is READY plus a future not-before time.
            if proto == .retryWait {
                #expect(Orchestrator_V1_TaskState(.ready, availableAt: 2_000, now: 1_000) == .retryWait)
            } else {
                #expect(Orchestrator_V1_TaskState(domain!) == proto)
            }
        }
        #expect(Orchestrator_V1_TaskState.unspecified.domainState == nil)
        #expect(Orchestrator_V1_TaskState(rawValue: 99).domainState == nil)
    }

    @Test func readyTaskInBackoffIsRetryWait() {
        #expect(Orchestrator_V1_TaskState(.ready, availableAt: 2_000, now: 1_000) == .retryWait)
        #expect(Orchestrator_V1_TaskState(.ready, availableAt: 1_000, now: 1_000) == .ready)
        #expect(Orchestrator_V1_TaskState(.ready, availableAt: nil, now: 1_000) == .ready)
        #expect(Orchestrator_V1_TaskState(.pending, availableAt: 2_000, now: 1_000) == .pending)
    }

    @Test(arguments: WorkflowState.allCases)
    func everyWorkflowStateMaps(_ state: WorkflowState) {
        let proto = Orchestrator_V1_WorkflowState(state)
        #expect(proto != .unspecified)
        // The API has no PENDING: a workflow not yet planned shows as PLANNING.
        #expect(proto.domainState == (state == .pending ? .planning : state))
        #expect(proto.domainStates.contains(state))
    }

    @Test func everyAPIWorkflowStateMapsToTheDomain() {
        for raw in Int32(1)...5 {
            let proto = Orchestrator_V1_WorkflowState(rawValue: raw)
            let domain = proto.domainState
            #expect(domain != nil)
            #expect(Orchestrator_V1_WorkflowState(domain!) == proto)
        }
        #expect(Orchestrator_V1_WorkflowState.unspecified.domainState == nil)
        #expect(Orchestrator_V1_WorkflowState.planning.domainStates == [.pending, .planning])
    }

    @Test(arguments: EventKind.allCases.filter { $0 != .unrecognized })
    func everyEventKindMapsAndComesBack(_ kind: EventKind) {
        let proto = Orchestrator_V1_EventType(kind)
        #expect(proto != .unspecified)
        #expect(proto.eventKind == kind)
    }

    /// A newer server's event type, read here: delivered as UNSPECIFIED, never asked for.
    @Test func anUnrecognizedEventKindIsDeliveredAsUnspecified() {
        #expect(Orchestrator_V1_EventType(EventKind.unrecognized) == .unspecified)
        #expect(Orchestrator_V1_EventType.unspecified.eventKind == nil)
    }

    @Test func everyAPIEventTypeMapsToTheDomain() {
        for raw in Int32(1)...17 {
            let proto = Orchestrator_V1_EventType(rawValue: raw)
            #expect(proto.eventKind.map(Orchestrator_V1_EventType.init) == proto)
        }
        #expect(Orchestrator_V1_EventType.unspecified.eventKind == nil)
    }

    @Test func failurePolicyAndPlannerKind() {
        for policy in [FailurePolicy.failFast, .continueIndependent] {
            #expect(Orchestrator_V1_FailurePolicy(policy).domainPolicy == policy)
        }
        #expect(Orchestrator_V1_FailurePolicy.unspecified.domainPolicy == nil)
        for kind in [Orchestrator_V1_PlannerKind.explicit, .catalog, .delegated] {
            #expect(Orchestrator_V1_PlannerKind(plannerName: kind.plannerName) == kind)
        }
        #expect(Orchestrator_V1_PlannerKind.explicit.plannerName == ExplicitPlanner.defaultName)
        #expect(Orchestrator_V1_PlannerKind.catalog.plannerName == CatalogPlanner.defaultName)
        #expect(Orchestrator_V1_PlannerKind.delegated.plannerName == DelegatedPlanner.defaultName)
        #expect(Orchestrator_V1_PlannerKind.unspecified.plannerName == nil)
    }

    @Test(arguments: ValidationCode.allCases)
    func everyValidationCodeHasAnAPICode(_ code: ValidationCode) {
        let api = ProblemCode(code).rawValue
        #expect(!api.isEmpty && api == api.uppercased())
    }
}
