public import Logging
public import NGRPC

/// Runs one RPC's body and turns whatever it throws into the call's status, once, at the edge:
/// a call already cancelled (deadline, client reset) keeps that reason; everything else goes
/// through `StatusMapping`.
func mappingErrors<T>(_ context: ServerContext, logger: Logger, _ body: () async throws -> T) async throws(RPCStatus) -> T {
    do {
        return try await body()
    } catch {
        if context.isCancelled, let reason = context.cancellation { throw reason }
        throw StatusMapping.status(for: error, logger: logger, method: context.method.path)
    }
}
