import Foundation
public import OrchestratorAPI
public import OrchestratorApp
import OrchestratorDomain
import OrchestratorTracing

extension Orchestrator_V1_LeaseToken {
    public init(_ lease: LeaseToken) { self.init(taskID: lease.taskID, fencingToken: lease.fencingToken) }

    /// The lease with its task id in the form the server hands out (a lowercase UUID): the
    /// database compares UUIDs regardless of case but the lease table compares text, so an id
    /// written in capitals got past the stream checks — a stream whose lease another stream had
    /// taken over stored its result over the new holder's (found by black-box testing). Ids that
    /// are no UUID are kept as sent, for the store to refuse.
    public var domainLease: LeaseToken { LeaseToken(taskID: Self.canonicalTaskID(taskID), fencingToken: fencingToken) }

    static func canonicalTaskID(_ taskID: String) -> String {
        guard taskID.utf8.contains(where: { $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "F") }),
            let uuid = UUID(uuidString: taskID)
        else { return taskID }
        return uuid.uuidString.lowercased()
    }
}

extension Orchestrator_V1_Assignment {
    /// The API form of a freshly claimed task.
    ///
    /// - Parameters:
    ///   - leaseTTLMillis: the TTL the lease was granted with (the task's own or the server default).
    ///   - spanID: 16 hex digits of the span the executor's work continues from; by default the
    ///     task's dispatch span (so the executor's span is its child), else random.
    public init(
        _ claimed: ClaimedTask, leaseTTLMillis: Int64, spanID: String? = nil
    ) {
        self.init()
        let task = claimed.task
        lease = Orchestrator_V1_LeaseToken(claimed.lease)
        workflowID = task.workflowID
        // The claim reads every upstream task's result (empty when it has none), so its keys are
        // the task's dependencies; the spec's depends_on was always empty (found by black-box testing).
        spec = Orchestrator_V1_TaskSpec(task.spec, dependsOn: claimed.upstreamResults.keys.sorted().map { TaskKey($0) }, payload: task.payload)
        attempt = Int32(clamping: task.attempt)
        maxAttempts = Int32(clamping: task.maxAttempts)
        leaseExpiresUnixMs = claimed.leaseExpiresAt
        self.leaseTtlMs = leaseTTLMillis
        upstreamResults = claimed.upstreamResults
        inputs = claimed.inputs
        let dispatch = claimed.dispatchSpan?.context
        traceparent = TraceParent.header(
            traceID: task.traceID, spanID: spanID ?? dispatch?.spanID ?? TraceParent.randomSpanID(), sampled: dispatch?.sampled ?? true) ?? ""
        tracestate = dispatch?.traceState ?? ""
    }
}

extension Orchestrator_V1_Assignment {
    /// What `claimed`'s assignment message takes on the wire, at most: encoded without its lease
    /// TTL (set when it is sent), plus the most that field can take (`maxLeaseTTLFieldBytes`). The
    /// message carrying it adds its own field's tag and length (`DispatchService`). It allowed 32
    /// bytes, so a task whose assignment fit the limit by fewer than ~28 bytes failed as too large
    /// (found by black-box testing). `Int.max` when it cannot even be encoded.
    public static func encodedSize(of claimed: ClaimedTask) -> Int {
        guard let bytes = try? Orchestrator_V1_Assignment(claimed, leaseTTLMillis: 0).serializedBytes() else { return Int.max }
        return bytes.count + maxLeaseTTLFieldBytes
    }

    /// Field 7's tag (1 byte) and a varint of a TTL up to 24 days (< 2^31 ms: 5 bytes).
    public static let maxLeaseTTLFieldBytes = 6
}

/// W3C `traceparent` values for assignments, so an executor's work joins its workflow's trace.
public enum TraceParent {
    /// `00-<trace id>-<span id>-01`, or nil when either id is malformed (an invalid header would make
    /// the executor's tracer drop the context anyway; no header starts a fresh trace instead).
    public static func header(traceID: String, spanID: String, sampled: Bool = true) -> String? {
        guard isHex(traceID, count: 32), isHex(spanID, count: 16) else { return nil }
        return "00-\(traceID.lowercased())-\(spanID.lowercased())-\(sampled ? "01" : "00")"
    }

    /// 16 random lower-case hex digits, never all zero.
    public static func randomSpanID() -> String {
        var value: UInt64 = 0
        while value == 0 { value = UInt64.random(in: .min ... .max) }
        let hex = String(value, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }

    static func isHex(_ text: String, count: Int) -> Bool {
        text.utf8.count == count
            && text.utf8.allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) || ($0 >= 65 && $0 <= 70) }
            && !text.utf8.allSatisfy { $0 == 48 }
    }
}
