// OrchestratorApp: the application layer (see docs/ARCHITECTURE.md).
