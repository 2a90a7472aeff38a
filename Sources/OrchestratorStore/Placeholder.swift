// OrchestratorStore: SQL repositories. Placeholder until written.
