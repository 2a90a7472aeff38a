import Foundation
import OrchestratorAPI
import OrchestratorGRPC

/// Reads a DAG file (the format is `DagFileJSON`'s, shared with the fuzz targets).
enum DagFile {
    /// `path` `-` reads standard input.
    static func load(_ path: String) throws -> Orchestrator_V1_Dag {
        let bytes = try read(path)
        do {
            return try DagFileJSON.decode(bytes, source: path == "-" ? "standard input" : path)
        } catch {
            throw CLIError(error.message)
        }
    }

    /// The file's bytes, read as a stream: `Data(contentsOf:)` refused pipes and process
    /// substitutions (`--dag /dev/stdin`, `--dag <(…)`) with "You don't have permission"
    /// (found by black-box testing).
    static func read(_ path: String) throws -> [UInt8] {
        let fd = path == "-" ? STDIN_FILENO : open(path, O_RDONLY)
        guard fd >= 0 else { throw CLIError("cannot read \(path): \(String(cString: strerror(errno)))") }
        defer { if fd != STDIN_FILENO { close(fd) } }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = chunk.withUnsafeMutableBytes { Foundation.read(fd, $0.baseAddress, $0.count) }
            if count == 0 { return bytes }
            if count < 0 {
                if errno == EINTR { continue }
                throw CLIError("cannot read \(path): \(String(cString: strerror(errno)))")
            }
            bytes += chunk[..<count]
        }
    }
}
