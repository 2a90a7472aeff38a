public import OrchestratorDomain

/// The query's capability constraints (`Constraints.allowed_capabilities` / `forbidden_capabilities`),
/// which name executor capabilities, applied to planning.
///
/// The catalog planner excludes catalog entries by *name*; `exclusions` turns the executor-capability
/// constraints into those names before planning, and `violations` checks the finished plan whatever
/// planner made it (an explicit graph or a delegated planning task may need a capability the caller
/// ruled out).
public enum CapabilityConstraints {
    /// The catalog entries the planner must not use: those named, or running on an executor capability
    /// that is forbidden, or not allowed when an allow-list is given.
    public static func exclusions(forbidden: Set<String>, allowed: [String], catalog: CapabilityCatalog?) -> Set<String> {
        var excluded = forbidden
        guard let catalog else { return excluded }
        let allowSet = Set(allowed)
        for capability in catalog.capabilities {
            if forbidden.contains(capability.executorCapability)
                || (!allowSet.isEmpty && !allowSet.contains(capability.executorCapability))
            {
                excluded.insert(capability.name)
            }
        }
        return excluded
    }

    /// One sentence per task that requires a forbidden or not-allowed capability, in plan order.
    public static func violations(in dag: Dag, forbidden: Set<String>, allowed: [String]) -> [String] {
        PlanningConstraints(excludedCapabilities: forbidden, allowedCapabilities: Set(allowed)).capabilityViolations(in: dag)
    }
}
