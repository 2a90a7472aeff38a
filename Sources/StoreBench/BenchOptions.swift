import Foundation
import OrchestratorStore

/// Command-line options of StoreBench (a handful of flags; no parser library needed).
struct BenchOptions {
    var databaseURL = ""
    var workers = [1, 8, 32]
    var tasks = 40_000
    var seconds = 10.0
    var batch = 10
    /// Report a claimed batch's tasks one after the other instead of concurrently.
    var sequentialReports = false
    /// Skip storing the 100,000-task DAG (for quick claim/complete runs).
    var skipDag = false
    /// Batches of one kind applied at once (`StoreConfiguration.concurrentBatches`).
    var concurrentBatches = StoreConfiguration().concurrentBatches

    static let usage = """
        StoreBench --database-url URL [--workers "1 8 32"] [--tasks N] [--seconds S] [--batch B]
                   [--concurrent-batches C] [--sequential-reports] [--skip-dag]
        """

    var maxWorkers: Int { workers.max() ?? 1 }

    static func parse(_ arguments: ArraySlice<String>) -> BenchOptions {
        var options = BenchOptions()
        var iterator = arguments.makeIterator()
        while let flag = iterator.next() {
            if flag == "--help" || flag == "-h" {
                print(usage)
                exit(0)
            }
            if flag == "--sequential-reports" || flag == "--skip-dag" {
                if flag == "--skip-dag" { options.skipDag = true } else { options.sequentialReports = true }
                continue
            }
            guard let value = iterator.next() else { fatalError("missing value for \(flag)") }
            switch flag {
            case "--database-url": options.databaseURL = value
            case "--workers": options.workers = value.split(separator: " ").compactMap { Int($0) }
            case "--tasks": options.tasks = Int(value) ?? options.tasks
            case "--seconds": options.seconds = Double(value) ?? options.seconds
            case "--batch": options.batch = Int(value) ?? options.batch
            case "--concurrent-batches": options.concurrentBatches = Int(value) ?? options.concurrentBatches
            default: fatalError("unknown option \(flag)")
            }
        }
        precondition(!options.databaseURL.isEmpty, "--database-url is required")
        return options
    }
}
