import Testing
@testable import OrchestratorDomain

/// A task whose required capability no executor may advertise (executors send 1-128 byte names, at most
/// 256) could never be leased; validation refuses it instead of letting it wait forever.
@Suite struct CapabilityValidationTests {
    static func dag(requiring capabilities: [String]) -> Dag {
        Dag(tasks: [TaskSpec(key: "a", requiredCapabilities: capabilities)], edges: [])
    }

    @Test func ordinaryCapabilitiesAreAccepted() throws {
        _ = try Graphs.validate(Self.dag(requiring: ["echo", String(repeating: "c", count: 128)]))
    }

    @Test func emptyCapabilityIsRejected() {
        let failure = Graphs.failure(Self.dag(requiring: ["echo", ""]))
        #expect(failure?.issues.map(\.code) == [.invalidCapability])
        #expect(failure?.issues.first?.message == "task `a` requires capability `` (0 bytes); capabilities must be 1-128 bytes")
        #expect(failure?.issues.first?.taskKeys == ["a"])
    }

    @Test func overlongCapabilityIsRejected() {
        let failure = Graphs.failure(Self.dag(requiring: [String(repeating: "c", count: 129)]))
        #expect(failure?.issues.map(\.code) == [.invalidCapability])
    }

    @Test func tooManyCapabilitiesAreRejected() {
        let failure = Graphs.failure(Self.dag(requiring: (0..<257).map { "cap\($0)" }))
        #expect(failure?.issues.map(\.code) == [.invalidCapability])
        #expect(failure?.issues.first?.message == "task `a` requires 257 capabilities; the limit is 256")
    }
}
