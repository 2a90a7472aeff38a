import NGRPC

/// The trace a submission joins: its id, the caller's `tracestate`, and the caller's sampled flag
/// (nil when the trace was started here and the server's sampler decides). Kept with the workflow,
/// so the executors of its tasks continue the same trace with the same decision.
struct SubmittedTrace: Sendable {
    var traceID: String
    var traceState: String?
    var sampled: Bool?

    init(traceID: String, traceState: String?, sampled: Bool?) {
        self.traceID = traceID
        self.traceState = traceState
        self.sampled = sampled
    }

    /// The call's own trace context.
    init(_ context: TraceContext) {
        self.init(traceID: context.traceID, traceState: context.traceState, sampled: context.startedLocally ? nil : context.sampled)
    }
}
