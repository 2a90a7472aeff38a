public import OrchestratorMetrics

#if canImport(Glibc)
    import Glibc
#endif

/// The standard `process_*` metrics of Prometheus client libraries, read from `/proc/self` at
/// scrape time (Linux): CPU time, resident and virtual memory, open file descriptors and threads.
public enum ProcessMetrics {
    public static func register(into registry: MetricsRegistry) {
        let ticks = Double(max(1, sysconf(Int32(_SC_CLK_TCK))))
        let pageSize = Double(max(1, sysconf(Int32(_SC_PAGESIZE))))
        registry.register("process_cpu_seconds_total", help: "User and system CPU time spent, in seconds.", type: .counter) {
            guard let fields = statFields() else { return [] }
            return [([], (fields[10] + fields[11]) / ticks)]  // utime, stime (fields 14 and 15 of stat)
        }
        registry.register("process_resident_memory_bytes", help: "Resident memory size in bytes.", type: .gauge) {
            guard let fields = statFields() else { return [] }
            return [([], fields[20] * pageSize)]  // rss (field 24), in pages
        }
        registry.register("process_virtual_memory_bytes", help: "Virtual memory size in bytes.", type: .gauge) {
            guard let fields = statFields() else { return [] }
            return [([], fields[19])]  // vsize (field 23)
        }
        registry.register("process_threads", help: "Threads of the process.", type: .gauge) {
            guard let fields = statFields() else { return [] }
            return [([], fields[16])]  // num_threads (field 20)
        }
        registry.register("process_open_fds", help: "Open file descriptors.", type: .gauge) {
            guard let directory = opendir("/proc/self/fd") else { return [] }
            defer { closedir(directory) }
            var count = -3  // ".", ".." and the descriptor opendir itself holds
            while readdir(directory) != nil { count += 1 }
            return [([], Double(max(0, count)))]
        }
        registry.register("process_max_fds", help: "Most file descriptors the process may open.", type: .gauge) {
            var limit = rlimit()
            guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return [] }
            return [([], Double(limit.rlim_cur))]
        }
    }

    /// The numeric fields of `/proc/self/stat` from field 4 (`ppid`) on: index `n - 4` is field
    /// `n` of proc(5). Nil when unreadable.
    static func statFields() -> [Double]? {
        guard let file = fopen("/proc/self/stat", "r") else { return nil }
        defer { fclose(file) }
        var buffer = [CChar](repeating: 0, count: 1024)
        guard fgets(&buffer, Int32(buffer.count), file) != nil else { return nil }
        let line = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        // The command name is in parentheses and may contain spaces: split after the last ')'.
        guard let close = line.lastIndex(of: ")") else { return nil }
        let rest = line[line.index(after: close)...].split(separator: " ").dropFirst()  // drop the state letter
        return rest.map { Double(String($0.filter { !$0.isWhitespace })) ?? 0 }
    }
}
