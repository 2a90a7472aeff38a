/// One executor lease stream open on this server, as operators see it (`/executors` on the admin
/// port, `orchestrator_executor_sessions_by_capability`): who is connected, what it can take,
/// how busy it is and when it was last heard from.
public struct ExecutorSession: Sendable, Equatable {
    public var sessionID: String
    public var executor: ExecutorIdentity
    public var openedAt: UnixMillis
    /// Its last heartbeat, or when it opened.
    public var lastHeard: UnixMillis
    public var leasesHeld: Int
    /// The executor asked for no more work (`drain`); it finishes what it holds, then leaves.
    public var draining: Bool = false
}
