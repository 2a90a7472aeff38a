import Foundation

/// What /proc says about another process (the server under test): resident memory, CPU time
/// spent so far and open file descriptors. Linux only, which is where the benchmarks run.
struct ProcSample {
    /// VmRSS from /proc/PID/status, in KiB.
    var rssKiB: Int
    /// utime + stime from /proc/PID/stat, in seconds.
    var cpuSeconds: Double
    /// Entries of /proc/PID/fd (sockets, the database pool, the log).
    var openFiles: Int
    var at: ContinuousClock.Instant

    static func read(pid: Int32) throws -> ProcSample {
        let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
              let rss = line.split(separator: " ").dropFirst().first.flatMap({ Int($0) })
        else { throw BenchError("no VmRSS in /proc/\(pid)/status") }
        // The command name (field 2) may hold spaces: the numeric fields start after its ')'.
        let stat = try String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)
        guard let close = stat.lastIndex(of: ")") else { throw BenchError("unreadable /proc/\(pid)/stat") }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // fields[0] is field 3 (state); utime and stime are fields 14 and 15.
        guard fields.count > 12, let utime = Double(fields[11]), let stime = Double(fields[12]) else {
            throw BenchError("unreadable /proc/\(pid)/stat")
        }
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        let files = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? -1
        return ProcSample(rssKiB: rss, cpuSeconds: (utime + stime) / ticks, openFiles: files, at: .now)
    }

    var rssMiB: Double { Double(rssKiB) / 1024 }

    /// Percent of one core used between `earlier` and this sample.
    func cpuPercent(since earlier: ProcSample) -> Double {
        let wall = Scenarios.seconds(since: earlier.at) - Scenarios.seconds(since: at)
        return wall > 0 ? (cpuSeconds - earlier.cpuSeconds) / wall * 100 : 0
    }
}
