public import Logging
public import OrchestratorDomain

#if canImport(FoundationEssentials)
    internal import FoundationEssentials
#else
    internal import Foundation
#endif

/// Builds the server's planners: explicit, catalog (when a catalog file is available) and delegated.
public enum PlannerSetup {
    /// The sample catalog, relative to the working directory (the repository root in development).
    public static let defaultCatalogPath = "examples/catalogs/agent-team.json"

    /// A catalog file that could not be used.
    public struct CatalogLoadError: Error, Hashable, Sendable, CustomStringConvertible {
        public var path: String
        public var problems: [String]
        public var description: String { "catalog \(path): \(problems.joined(separator: "; "))" }
    }

    /// Reads and decodes a catalog file.
    public static func loadCatalog(path: String) throws(CatalogLoadError) -> CapabilityCatalog {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CatalogLoadError(path: path, problems: ["cannot be read"])
        }
        if let syntax = JSONSyntaxError.problem(in: Array(data)) {
            throw CatalogLoadError(path: path, problems: ["not valid JSON: \(syntax)"])
        }
        do {
            return try CapabilityCatalog.decodeJSON(Array(data))
        } catch {
            throw CatalogLoadError(path: path, problems: error.problems)
        }
    }

    /// The planners and the catalog they use. An explicit `catalogPath` must load; without one the
    /// sample catalog is used when present, and the catalog planner is left out when it is not (text
    /// queries then go to the delegated planner, per `PlannerRegistry.select(for:)`).
    public static func standard(catalogPath: String? = nil, logger: Logger) throws(CatalogLoadError)
        -> (registry: PlannerRegistry, catalog: CapabilityCatalog?)
    {
        var catalog: CapabilityCatalog?
        if let catalogPath {
            catalog = try loadCatalog(path: catalogPath)
        } else if FileManager.default.fileExists(atPath: defaultCatalogPath) {
            catalog = try loadCatalog(path: defaultCatalogPath)
        }
        if let catalog {
            logger.info(
                "capability catalog loaded", metadata: ["catalog": "\(catalog.name)", "capabilities": "\(catalog.capabilities.count)"])
        } else {
            logger.info("no capability catalog; the catalog planner is disabled")
        }
        var planners: [any Planner] = [ExplicitPlanner()]
        if let catalog { planners.append(CatalogPlanner(catalog: catalog)) }
        planners.append(DelegatedPlanner())
        return (PlannerRegistry(planners), catalog)
    }
}
