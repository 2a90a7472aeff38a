/// Hooks a pool calls so its owner can record metrics, without this library depending on a
/// metrics package. Each hook runs inline on the calling task: keep it to a counter or
/// histogram update.
public struct PostgresInstrumentation: Sendable {
    /// One call on a connection's thread finished (a statement, a pipeline, a batch or COPY;
    /// transactions' BEGIN and COMMIT count as calls of their own): how long the caller waited
    /// for it, thread hop included, and whether it threw.
    public var callFinished: (@Sendable (_ elapsed: Duration, _ failed: Bool) -> Void)?
    /// A caller got a connection from the pool after waiting this long (zero when one was idle).
    public var connectionAcquired: (@Sendable (_ waited: Duration) -> Void)?
    /// One attempt to open a connection ended, successfully or not.
    public var connectAttempted: (@Sendable (_ failed: Bool) -> Void)?

    public init(
        callFinished: (@Sendable (Duration, Bool) -> Void)? = nil, connectionAcquired: (@Sendable (Duration) -> Void)? = nil,
        connectAttempted: (@Sendable (Bool) -> Void)? = nil
    ) {
        self.callFinished = callFinished
        self.connectionAcquired = connectionAcquired
        self.connectAttempted = connectAttempted
    }
}
