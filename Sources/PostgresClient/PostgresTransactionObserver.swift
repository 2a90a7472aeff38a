/// Watches `PostgresPool.withTransaction` calls, so a server can record them (as trace spans)
/// without this library knowing any tracer.
///
/// `transactionStarted` runs in the caller's task before the first attempt (task-local values,
/// such as the current span, are visible there); the observation it returns is ended once, after
/// the last attempt, with the error that ended the transaction, if any.
public protocol PostgresTransactionObserver: Sendable {
    func transactionStarted(isolation: PostgresIsolation) -> (any PostgresTransactionObservation)?
}

/// One observed transaction.
public protocol PostgresTransactionObservation: Sendable {
    /// - Parameters:
    ///   - attempts: how many times the transaction ran (retries after serialization failures,
    ///     deadlocks and lost connections included).
    ///   - error: why it failed, or nil when it committed.
    func transactionEnded(attempts: Int, error: (any Error)?)
}
