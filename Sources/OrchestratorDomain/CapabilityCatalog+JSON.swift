// The only Foundation use in the domain: JSONDecoder for the catalog file. The caller reads the file and
// passes its bytes, so the domain still does no I/O. FoundationEssentials is preferred where available
// (it is the light half of Foundation on Linux).
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

extension CapabilityCatalog {
    /// The file format (see docs/DOMAIN.md):
    ///
    ///     { "name": "agent-team", "implicitInputs": ["question"],
    ///       "artifacts": { "question": "the query text", … },
    ///       "capabilities": [ { "name": "web_search", "consumes": ["question"], "produces": ["search_results"],
    ///                           "cost": 1, "executorCapability": "search", "complexity": "low" }, … ],
    ///       "intents": [ { "name": "research", "phrases": ["research", "report on"], "goals": ["reviewed_report"] } ] }
    struct FileFormat: Decodable {
        var name: String
        var implicitInputs: [String]?
        var artifacts: [String: String]?
        var capabilities: [CatalogCapability]
        var intents: [IntentRule]?
    }

    /// Decodes and checks a catalog from JSON bytes.
    public static func decodeJSON(_ bytes: [UInt8], keyCharset: KeyCharset = .default) throws(CatalogError) -> CapabilityCatalog {
        let file: FileFormat
        do {
            file = try JSONDecoder().decode(FileFormat.self, from: Data(bytes))
        } catch let error as DecodingError {
            throw CatalogError(problems: [describe(error)])
        } catch {
            throw CatalogError(problems: ["catalog is not valid JSON: \(error)"])
        }
        return try CapabilityCatalog(
            name: file.name, implicitInputs: file.implicitInputs ?? [], artifactDescriptions: file.artifacts ?? [:],
            capabilities: file.capabilities, intents: file.intents ?? [], keyCharset: keyCharset)
    }

    /// "capabilities[2].cost: expected a number" rather than Foundation's debug dump.
    static func describe(_ error: DecodingError) -> String {
        func path(_ keys: [any CodingKey]) -> String {
            var out = ""
            for key in keys {
                if let i = key.intValue { out += "[\(i)]" } else { out += (out.isEmpty ? "" : ".") + key.stringValue }
            }
            return out.isEmpty ? "(top level)" : out
        }
        switch error {
        case .keyNotFound(let key, let context):
            return "\(path(context.codingPath + [key])): required field is missing"
        case .typeMismatch(let type, let context):
            return "\(path(context.codingPath)): expected \(type)"
        case .valueNotFound(let type, let context):
            return "\(path(context.codingPath)): expected \(type), found null"
        case .dataCorrupted(let context):
            return "\(path(context.codingPath)): \(context.debugDescription)"
        @unknown default:
            return "catalog could not be decoded: \(error)"
        }
    }
}
