#if canImport(Glibc)
    import Glibc
#endif

/// The process's file descriptor limit (`RLIMIT_NOFILE`), raised at start to its hard limit, and
/// the connection budget derived from it.
///
/// Every connection holds a descriptor, and a process out of them does not fail gracefully:
/// libdispatch's worker-pool monitor opens /proc files and traps when it cannot (found by
/// black-box testing: the server died SIGILL once slowloris connections filled a limit of 1,200).
/// Debian's default soft limit is 1,024 with a hard limit far above, so the soft limit is raised
/// as far as allowed (as Go's runtime and nginx's `worker_rlimit_nofile` do), and gRPC connections
/// are bounded below it with room for everything else.
enum FileDescriptorLimit {
    struct Limits: Equatable {
        var soft: Int
        var hard: Int
        /// The soft limit before `raise()` changed it (equal to `soft` when it did not).
        var original: Int
    }

    /// Descriptors kept for what is not a gRPC connection: PostgreSQL connections, the admin
    /// server's connections, logs, the event loops' own descriptors, libdispatch, TLS files.
    static func reserve(databasePoolSize: Int, adminConnections: Int) -> Int {
        256 + databasePoolSize + adminConnections
    }

    static let minimumConnections = 16

    /// Raises the soft limit to the hard one (at most 1,048,576: an unlimited hard limit would
    /// size per-descriptor tables absurdly). Returns the limits; unchanged when the call fails.
    static func raise() -> Limits {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return Limits(soft: 1024, hard: 1024, original: 1024) }
        let ceiling: rlim_t = 1 << 20
        let original = Int(min(limit.rlim_cur, ceiling))
        let target = min(limit.rlim_max, ceiling)
        if limit.rlim_cur < target {
            var raised = limit
            raised.rlim_cur = target
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 {
                return Limits(soft: Int(target), hard: Int(min(limit.rlim_max, ceiling)), original: original)
            }
        }
        return Limits(soft: original, hard: Int(min(limit.rlim_max, ceiling)), original: original)
    }

    /// The most gRPC connections the server may hold: `setting` (0: no limit) when it fits under
    /// `soft` with the reserve, the largest number that fits when unset.
    /// - Throws: `SettingsError` when the setting does not fit.
    static func maxConnections(setting: Int?, soft: Int, reserve: Int) throws -> Int? {
        // Below the reserve and a few connections the server cannot run as documented: it took
        // a limit of 100 and answered ready (found by black-box testing).
        guard soft - reserve >= minimumConnections else {
            throw SettingsError(
                description: "the file descriptor limit \(soft) (ulimit -n) is too low: the server keeps \(reserve) for the database pool, "
                    + "the admin server and its own use, and needs room for \(minimumConnections) connections beside them; raise it to "
                    + "\(reserve + minimumConnections) or more (ulimit -n, LimitNOFILE= in a systemd unit)")
        }
        let fits = soft - reserve
        guard let setting else { return fits }
        if setting == 0 { return nil }
        if setting > fits {
            throw SettingsError(
                description: "max-connections \(setting) does not fit the file descriptor limit: this process may open \(soft) "
                    + "(ulimit -n) and keeps \(reserve) for the database pool, the admin server and its own use, so at most \(fits); "
                    + "lower max-connections or raise the limit (ulimit -n, LimitNOFILE= in a systemd unit)")
        }
        return setting
    }
}
