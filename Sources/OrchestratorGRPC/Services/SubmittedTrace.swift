public import NGRPC

/// The trace a submission joins: its id, the caller's `tracestate`, and the caller's sampled flag
/// (nil when the trace was started here and the server's sampler decides). Kept with the workflow,
/// so the executors of its tasks continue the same trace with the same decision.
public struct SubmittedTrace: Sendable {
    public var traceID: String
    public var traceState: String?
    public var sampled: Bool?

    public init(traceID: String, traceState: String?, sampled: Bool?) {
        self.traceID = traceID
        self.traceState = traceState
        self.sampled = sampled
    }

    /// The call's own trace context.
    public init(_ context: TraceContext) {
        self.init(traceID: context.traceID, traceState: context.traceState, sampled: context.startedLocally ? nil : context.sampled)
    }
}
