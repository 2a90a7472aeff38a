import Foundation
import OrchestratorAPI
import OrchestratorGRPC

/// Reads a DAG file (the format is `DagFileJSON`'s, shared with the fuzz targets).
enum DagFile {
    static func load(_ path: String) throws -> Orchestrator_V1_Dag {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw CLIError("cannot read \(path): \(error.localizedDescription)")
        }
        do {
            return try DagFileJSON.decode(Array(data), source: path)
        } catch {
            throw CLIError(error.message)
        }
    }
}
