import Testing
@testable import OrchestratorDomain

@Suite struct DagDepthLimitTests {
    /// a → b → c → d, plus e hanging off a: depth 4.
    static let chain = Graphs.dag(["a", "b", "c", "d", "e"], edges: [("a", "b"), ("b", "c"), ("c", "d"), ("a", "e")])

    @Test func chainAtTheLimitIsAccepted() throws {
        _ = try Graphs.validate(Self.chain, limits: ValidationLimits(maxDepth: 4))
    }

    @Test func chainOverTheLimitIsRejectedNamingItsEnd() {
        let failure = Graphs.failure(Self.chain, limits: ValidationLimits(maxDepth: 3))
        #expect(failure?.issues.map(\.code) == [.tooDeep])
        #expect(failure?.issues.first?.message
            == "the longest dependency chain has 4 tasks (ending at `d`); the depth limit is 3")
        #expect(failure?.issues.first?.taskKeys == ["d"])
    }

    @Test func wideShallowGraphPassesATightDepthLimit() throws {
        _ = try Graphs.validate(CanonicalShape.fanOut10k.dag, limits: ValidationLimits(maxDepth: 2))
        #expect(Graphs.failure(CanonicalShape.fanOut10k.dag, limits: ValidationLimits(maxDepth: 1))?.issues.map(\.code) == [.tooDeep])
    }
}
