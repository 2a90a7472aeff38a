/// Who caused the changes the current call makes, and that call's W3C trace id: what the audit
/// trail records on every event appended while the call runs.
///
/// Carried as a task-local value (the way swift-distributed-tracing carries its context) rather
/// than as a parameter of every store method: the gRPC edge binds it once per call
/// (`AuditCause.$current.withValue`), and every event the store appends on that call's behalf —
/// in any transaction, however deep in the application — picks it up. Child tasks and
/// unstructured `Task {}` inherit it (a lease stream's inbound loop does); `Task.detached` and
/// the server's background loops (lease keeper, reaper) run without one, so what the server does
/// on its own is recorded with no actor.
public struct AuditCause: Hashable, Sendable {
    public var actor: Actor
    /// The calling RPC's trace id (32 lower-case hex digits).
    public var traceID: String

    public init(actor: Actor, traceID: String) {
        self.actor = actor
        self.traceID = traceID
    }

    /// The cause of the work running in this task; nil outside any call.
    @TaskLocal public static var current: AuditCause?
}
