import Foundation
import OrchestratorApp
import Testing

@testable import OrchestratorStore

/// Task ids: version 4 UUIDs that PostgreSQL's `uuid` and every client parse, never repeated.
@Suite("Random task ids")
struct RandomUUIDTests {
    @Test func idsAreVersion4WithTheRFC4122VariantAndDistinct() {
        var seen = Set<UUID>()
        for _ in 0..<10_000 {
            let id = RandomUUID.make()
            let text = id.uuidString
            #expect(Array(text)[14] == "4", "version nibble of \(text)")
            #expect("89AB".contains(Array(text)[19]), "variant of \(text)")
            #expect(UUID(uuidString: text) == id)
            seen.insert(id)
        }
        #expect(seen.count == 10_000)
    }

    @Test func workflowAndSessionIdsKeepTheirShape() {
        let generator = RandomIdentifierGenerator()
        let ids = (0..<1_000).map { _ in generator.make(prefix: "wf") }
        #expect(Set(ids).count == ids.count)
        for id in ids {
            // wf_, 12 hex digits of milliseconds, 20 random hex digits.
            #expect(id.count == 3 + 12 + 20 && id.hasPrefix("wf_"), "\(id)")
            #expect(id.dropFirst(3).allSatisfy { $0.isHexDigit }, "\(id)")
        }
    }
}
