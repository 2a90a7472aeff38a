public import OrchestratorApp
internal import OrchestratorAPI

/// The planning executors' wire contract (docs/EXECUTORS.md, "Planning executors"): a planning
/// task's `result` is a serialized `orchestrator.v1.Dag`, read exactly like a submitted explicit
/// graph (each task's `depends_on` becomes edges, `payload` travels beside the spec). Injected into
/// `PlanAdoptionService`, which validates and merges what this returns.
public enum ProposedGraphDecoding {
    /// A decoder that first holds the result's strings to what every request's are held to
    /// (`StringLengthGuard`: the length limit, no U+0000). Requests pass that guard at the edge; a
    /// result arrives as bytes inside a report, and protobuf-c cut its strings at a NUL unnoticed
    /// (a capability "no\0cap" became "no", and the task went to other executors; found by
    /// black-box testing), with no length limit either.
    public static func decoder(strings: StringLengthGuard) -> ProposedGraphDecoder {
        { bytes throws(ProposalDecodingError) in
            if let violation = strings.checkDag(bytes) { throw ProposalDecodingError(problems: [violation.description]) }
            return try decode(bytes)
        }
    }

    public static func decode(_ bytes: [UInt8]) throws(ProposalDecodingError) -> ProposedGraph {
        let proto: Orchestrator_V1_Dag
        do {
            proto = try Orchestrator_V1_Dag(serializedBytes: bytes)
        } catch {
            throw ProposalDecodingError(problems: ["the result (\(bytes.count) bytes) is not a serialized orchestrator.v1.Dag: \(error)"])
        }
        var problems = ProblemList()
        let decoded = DecodedDag(proto: proto, upstreamOutside: true, problems: &problems)
        // Reference problems are left out of the graph by DecodedDag; the application reports them
        // together with whatever validating the rest finds.
        var messages = problems.problems.map(\.message)
        if problems.totalCount > messages.count { messages.append("… and \(problems.totalCount - messages.count) more") }
        return ProposedGraph(dag: decoded.dag, payloads: decoded.payloads, problems: messages)
    }
}
