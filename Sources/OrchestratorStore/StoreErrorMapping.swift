import OrchestratorApp
import PostgresClient

/// Translates database failures into `StoreError` at the store's boundary.
///
/// Only failures the caller can do something about become `StoreError` (the database is
/// unreachable, the pool is exhausted or closed: `.unavailable`, which the edge answers with
/// UNAVAILABLE). Anything else is a bug in this code or the schema (a syntax error, a violated
/// constraint we did not expect): it is rethrown as is, and the edge logs it as INTERNAL.
enum StoreErrors {
    static func translate(_ error: any Error) -> any Error {
        guard let postgres = error as? PostgresError else { return error }
        switch postgres.code {
        case .connectionLost, .connectionFailed, .cannotConnectNow:
            return StoreError.unavailable(postgres.message)
        case .commitOutcomeUnknown:
            // The connection broke during COMMIT: the change may or may not be stored. Not a bug
            // (INTERNAL) but a transient failure the caller retries — with the same request id,
            // or the same fencing token, which make the retry safe (found by tools/chaos).
            return StoreError.unavailable(postgres.message)
        case .poolTimeout:
            return StoreError.unavailable("no database connection became free in time")
        case .poolClosed:
            return StoreError.unavailable("the database pool is closed")
        case .queryCanceled:
            // The database cancelled the statement (`statement_timeout`, an operator's
            // pg_cancel_backend): its transaction rolled back, nothing is half-written, and the
            // caller may retry. Not a bug in this code, so not INTERNAL.
            return StoreError.unavailable("the database cancelled the statement (statement_timeout or an operator's cancel)")
        case .serializationFailure, .deadlockDetected:
            // Reached only after the transaction's retries were exhausted: contention, not a bug.
            return StoreError.unavailable("the database is too contended right now (\(postgres.message))")
        default:
            return postgres
        }
    }

    /// Runs `body`, translating whatever it throws.
    static func mapping<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch {
            throw translate(error)
        }
    }
}
