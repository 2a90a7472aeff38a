// OrchestratorDomain — the workflow domain of the orchestrator.
//
// This target owns:
//   - the model: queries, task specs, edges, DAGs and their numbered versions, workflows;
//   - the task and workflow state machines (one transition table each, illegal moves are typed errors);
//   - DAG validation (every problem at once, linear in tasks + edges) and its configurable limits;
//   - graph analysis: topological order, levels, critical path, remaining-path ranks, fan-in/fan-out
//     statistics, DOT and Mermaid export;
//   - the planners (explicit, capability catalog, delegated) behind one protocol, and the function that
//     adopts a delegated plan as a new DAG version.
//
// It imports no C module and performs no I/O: callers hand it values (and catalog bytes) and get values
// back, so everything here is unit-testable without a server, a socket or a database. The only import
// outside the standard library is Foundation's JSON decoder, confined to `CapabilityCatalog+JSON.swift`.
