import OrchestratorDomain

/// A graph an executor proposed (a delegated planner's answer), decoded from its result bytes.
public struct ProposedGraph: Sendable, Hashable {
    public var dag: Dag
    /// Executor input per proposed task key.
    public var payloads: [TaskKey: [UInt8]]
    /// Problems the decoder found and left out of `dag` (a dependency on an unknown task, say).
    /// They make the answer unadoptable, but validation still runs on the rest so that the
    /// rejection lists every problem at once.
    public var problems: [String]

    public init(dag: Dag, payloads: [TaskKey: [UInt8]] = [:], problems: [String] = []) {
        self.dag = dag
        self.payloads = payloads
        self.problems = problems
    }
}

/// The result bytes are not a graph at all.
public struct ProposalDecodingError: Error, Hashable, Sendable, CustomStringConvertible {
    /// Every problem found, one sentence each.
    public var problems: [String]

    public init(problems: [String]) { self.problems = problems }

    public var description: String { problems.joined(separator: "; ") }
}

/// Turns a planning task's result into a graph. The wire format (a serialized
/// `orchestrator.v1.Dag`, docs/EXECUTORS.md "Planning executors") belongs to the edge, which
/// injects this closure so the application never sees generated code.
public typealias ProposedGraphDecoder = @Sendable ([UInt8]) throws(ProposalDecodingError) -> ProposedGraph
