import Foundation
import Testing
@testable import OrchestratorDomain

/// docs/DOMAIN.md shows the transition tables; these tests keep the docs equal to the code.
@Suite("Docs stay true")
struct DocsTests {
    func domainDoc() throws -> String {
        try String(contentsOf: CatalogFixtures.repositoryRoot.appendingPathComponent("docs/DOMAIN.md"), encoding: .utf8)
    }

    @Test func taskTableMatches() throws {
        #expect(try domainDoc().contains(TaskLifecycle.markdownTable()))
    }

    @Test func workflowTableMatches() throws {
        #expect(try domainDoc().contains(WorkflowLifecycle.markdownTable()))
    }

    @Test func everyValidationCodeIsDocumented() throws {
        let doc = try domainDoc()
        for code in ValidationCode.allCases { #expect(doc.contains("`\(code.rawValue)`"), "\(code.rawValue)") }
    }
}
