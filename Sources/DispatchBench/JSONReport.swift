import Foundation

/// What the plot script (tools/bench_plot.py) reads: one record per run.
struct JSONReport: Encodable {
    var scenario: String
    var runs: [RunRecord] = []

    func write(to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(self).write(to: URL(fileURLWithPath: path))
    }
}

struct RunRecord: Encodable {
    var label: String
    var executors: Int
    var tasks: Int
    var seconds: Double
    var tasksPerSecond: Double
    var p50: Double
    var p99: Double
    var max: Double
    var loadAverage: Double
    /// Ready → assignment latencies (ms), sorted; at most 2,000 evenly spaced ranks (for the CDF).
    var latencySample: [Double]

    init(label: String, executors: Int, tasks: Int, seconds: Double, latencies: [Double]) {
        self.label = label
        self.executors = executors
        self.tasks = tasks
        self.seconds = seconds
        tasksPerSecond = Double(tasks) / seconds
        p50 = percentile(latencies, 50)
        p99 = percentile(latencies, 99)
        max = latencies.last ?? .nan
        loadAverage = Self.loadAverage()
        let step = Swift.max(1, latencies.count / 2000)
        latencySample = stride(from: 0, to: latencies.count, by: step).map { latencies[$0] }
    }

    /// The 1-minute load average (/proc/loadavg): the machine is shared, so every figure carries it.
    static func loadAverage() -> Double {
        guard let text = try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8) else { return .nan }
        return Double(text.split(separator: " ").first ?? "") ?? .nan
    }

    var line: String {
        String(
            format: "executors=%d tasks=%d seconds=%.2f tasks_per_s=%.0f ready_to_assign_p50_ms=%.2f ready_to_assign_p99_ms=%.2f ready_to_assign_max_ms=%.2f load_avg=%.2f",
            executors, tasks, seconds, tasksPerSecond, p50, p99, max, loadAverage)
    }
}
