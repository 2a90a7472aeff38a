/// The W3C trace context headers of a request, read the way Trace Context (§3.2, §3.3) asks when
/// a header comes as several fields: `traceparent` fields that disagree make the context invalid
/// (the call starts a new trace), and `tracestate` fields are one list, joined with commas in
/// their order (RFC 9110 §5.3). One pass over the metadata: this runs for every call.
struct IncomingTraceHeaders {
    var traceparent: String?
    var tracestate: String?

    init(_ metadata: Metadata) {
        var parents: [String] = []
        var states: [String] = []
        for (key, value) in metadata {
            guard case .string(let text) = value else { continue }
            if key == "traceparent" {
                parents.append(text)
            } else if key == "tracestate" {
                states.append(text)
            }
        }
        if let first = parents.first, parents.allSatisfy({ $0 == first }) { traceparent = first }
        tracestate = states.isEmpty ? nil : states.joined(separator: ",")
    }
}
