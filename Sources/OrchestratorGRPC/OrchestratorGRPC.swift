// OrchestratorGRPC — the gRPC edge of the orchestrator.
//
// This target owns:
//   - the mappings between the generated `orchestrator.v1` messages and the domain and application
//     values (`Mapping/`): proto → domain decoding validates as it goes and collects every problem,
//     domain/app → proto encoding fills every field the API documents;
//   - the one place where typed errors become gRPC statuses (`StatusMapping.swift`): caller mistakes
//     become INVALID_ARGUMENT / NOT_FOUND / ABORTED / FAILED_PRECONDITION with a message listing every
//     problem, anything unexpected becomes a logged INTERNAL that leaks nothing;
//   - `PlanWorkflow`, which needs no database (`Planning/`): decode, plan with the registered planners,
//     answer with the DAG, its analysis and how it was planned.
//
// Service providers for submission, dispatch and watching live beside the application services that
// implement them; they call into the mappings and the status mapping here.
