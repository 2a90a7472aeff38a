public import OrchestratorAPI
public import OrchestratorApp
public import OrchestratorDomain

extension Orchestrator_V1_PlanningInfo {
    /// How a fresh plan came about. The planner's choices between alternatives are reported as warnings,
    /// as `PlanningRecord` stores them, so PlanWorkflow and GetWorkflow agree.
    public init(_ metadata: PlanningMetadata) {
        self.init(PlanningRecord(metadata))
    }

    public init(_ record: PlanningRecord) {
        self.init(
            planner: record.planner, durationUs: record.durationMicros, rationale: record.rationale,
            warnings: record.warnings, totalCost: record.totalCost)
    }
}

extension PlanningRecord {
    /// The stored form of a planner's metadata.
    public init(_ metadata: PlanningMetadata) {
        let (seconds, attoseconds) = metadata.duration.components
        self.init(
            planner: metadata.planner, durationMicros: seconds * 1_000_000 + attoseconds / 1_000_000_000_000,
            rationale: metadata.rationale, warnings: metadata.alternatives, totalCost: metadata.estimatedTotalCost)
    }
}
