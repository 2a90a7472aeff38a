import Logging
import NGRPC
import OrchestratorApp

/// Runs one RPC's body and turns whatever it throws into the call's status, once, at the edge:
/// a call already cancelled (deadline, client reset) keeps that reason; everything else goes
/// through `StatusMapping`. The body runs with the call's audit cause bound (`auditing`), so
/// every event it appends records who called and the call's trace id.
func mappingErrors<T>(_ context: ServerContext, logger: Logger, _ body: () async throws -> T) async throws(RPCStatus) -> T {
    do {
        return try await auditing(context, body)
    } catch {
        if context.isCancelled, let reason = context.cancellation { throw reason }
        throw StatusMapping.status(for: error, logger: logger, method: context.method.path)
    }
}

/// Runs `body` with `AuditCause.current` set to the caller (`CallerIdentity`) and the call's trace id.
func auditing<T>(_ context: ServerContext, _ body: () async throws -> T) async throws -> T {
    try await AuditCause.$current.withValue(AuditCause(actor: CallerIdentity.actor(of: context), traceID: context.trace.traceID)) {
        try await body()
    }
}
