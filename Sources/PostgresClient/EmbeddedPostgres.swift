import Foundation
import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// Why the embedded cluster could not be prepared or started.
public struct EmbeddedPostgresError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

/// A PostgreSQL cluster of our own in a local data folder, for development and tests.
///
/// `start()` runs `initdb` on first use (the folder is reused afterwards), starts the server with
/// `pg_ctl -w` (which waits until it accepts connections), creates the database and returns its
/// URL; `stop()` stops it with `pg_ctl -m fast`. The server listens on a Unix socket inside the
/// data folder (trusted: only the folder's owner can reach it) and on 127.0.0.1 with a random
/// password (scram-sha-256) kept in `<data>/orchestrator.password`.
///
/// PostgreSQL refuses to run as root: when this process is root, the folder is handed to the
/// `postgres` system user and every server command runs through `runuser -u postgres --`.
///
/// Not thread-safe; one owner starts and stops it. Calls block (they wait for child processes), so
/// call them from start-up/shutdown code or a dedicated thread, not from latency-sensitive tasks.
public final class EmbeddedPostgres: @unchecked Sendable {
    public let dataDirectory: URL
    public let port: Int
    public let database: String
    public let binDirectory: URL
    /// fsync off: much faster, and safe only for throwaway clusters (tests).
    public let durable: Bool
    let logger: Logger

    private var startedByUs = false
    /// `start()` found a server already running on the folder (another orchestratord's, or one a
    /// crashed process left) and used it: its owner, if alive, still needs it.
    public private(set) var adopted = false

    public init(
        dataDirectory: URL, port: Int = 5433, database: String = "orchestrator",
        binDirectory: URL = URL(fileURLWithPath: "/usr/lib/postgresql/15/bin"), durable: Bool = true,
        logger: Logger = Logger(label: "postgres.embedded")
    ) {
        self.dataDirectory = dataDirectory.standardizedFileURL
        self.port = port
        self.database = database
        self.binDirectory = binDirectory
        self.durable = durable
        self.logger = logger
    }

    /// The superuser the cluster is initialised with.
    public static let superuser = "postgres"

    private var runsAsRoot: Bool { geteuid() == 0 }

    /// URL of `database` over the Unix socket in the data folder.
    public var url: String { url(database: database) }

    /// URL of another database on this cluster (tests create one per test).
    public func url(database: String) -> String {
        let socket = dataDirectory.path.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed.subtracting(["&", "=", "+"])) ?? ""
        return "postgresql:///\(database)?host=\(socket)&port=\(port)&user=\(Self.superuser)"
    }

    /// Initialises the cluster if needed, starts it (or adopts one already running on this
    /// folder), creates the database, and returns its URL.
    @discardableResult
    public func start() throws -> String {
        if !FileManager.default.fileExists(atPath: dataDirectory.appendingPathComponent("PG_VERSION").path) {
            try initialise()
        }
        try clearStalePidFile()
        if try isRunning() {
            logger.info("adopting the PostgreSQL server already running on the data folder", metadata: ["data": "\(dataDirectory.path)"])
            adopted = true
        } else {
            try runServerCommand(
                "pg_ctl",
                [
                    "-D", dataDirectory.path, "-l", dataDirectory.appendingPathComponent("server.log").path, "-w", "-t", "60", "-o",
                    "-p \(port)", "start",
                ])
        }
        startedByUs = true
        try createDatabase(database)
        return url
    }

    /// Stops the server (fast shutdown: open transactions roll back). No-op when not running.
    public func stop() throws {
        guard try isRunning() else { return }
        try runServerCommand("pg_ctl", ["-D", dataDirectory.path, "-w", "-t", "60", "-m", "fast", "stop"])
        startedByUs = false
    }

    /// `start()` on a thread of its own, for async callers (it blocks for a second or more).
    public func startInBackground() async throws -> String {
        let thread = DatabaseThread(name: "embedded-postgres")
        defer { thread.shutdown() }
        return try await thread.run { [self] in try start() }
    }

    /// `stop()` on a thread of its own, for async callers.
    public func stopInBackground() async throws {
        let thread = DatabaseThread(name: "embedded-postgres")
        defer { thread.shutdown() }
        try await thread.run { [self] in try stop() }
    }

    /// Restarts the server (used by tests of reconnection).
    public func restart() throws {
        try runServerCommand(
            "pg_ctl",
            [
                "-D", dataDirectory.path, "-l", dataDirectory.appendingPathComponent("server.log").path, "-w", "-t", "60", "-m", "fast",
                "-o", "-p \(port)", "restart",
            ])
    }

    /// Creates `name` unless it exists.
    public func createDatabase(_ name: String) throws {
        let connection = try PostgresConnection(conninfo: url(database: "postgres"))
        let exists = try connection.query("SELECT 1 FROM pg_database WHERE datname = $1", [name])
        if exists.isEmpty {
            // unsafeSQL: CREATE DATABASE takes no parameters; the name is an escaped identifier.
            try connection.simpleQuery("CREATE DATABASE \(try connection.escapeIdentifier(name))")
        }
    }

    // MARK: - Steps

    private func initialise() throws {
        logger.info("initialising a PostgreSQL cluster", metadata: ["data": "\(dataDirectory.path)"])
        let fileManager = FileManager.default
        // Parents get ordinary permissions (Foundation would give them the data folder's 0700 too,
        // and the `postgres` user must be able to traverse them when we run as root).
        try fileManager.createDirectory(at: dataDirectory.deletingLastPathComponent(), withIntermediateDirectories: true)
        try fileManager.createDirectory(at: dataDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        try checkTraversable(dataDirectory.deletingLastPathComponent())
        // initdb refuses a non-empty folder; a half-initialised one from a crash is cleared.
        for entry in try fileManager.contentsOfDirectory(atPath: dataDirectory.path) {
            try fileManager.removeItem(at: dataDirectory.appendingPathComponent(entry))
        }
        let password = Self.randomPassword()
        // The password file lives beside the cluster's files, readable only by its owner.
        let passwordFile = dataDirectory.deletingLastPathComponent().appendingPathComponent(".\(dataDirectory.lastPathComponent).pwfile")
        try writeSecret(password, to: passwordFile)
        defer { try? fileManager.removeItem(at: passwordFile) }
        try handToServerUser(passwordFile)
        try handToServerUser(dataDirectory)
        var arguments = [
            "-D", dataDirectory.path, "-U", Self.superuser, "--pwfile", passwordFile.path, "--auth-local=trust",
            "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8",
        ]
        if !durable { arguments.append("--no-sync") }
        try runServerCommand("initdb", arguments)
        let passwordCopy = dataDirectory.appendingPathComponent("orchestrator.password")
        try writeSecret(password, to: passwordCopy)
        try handToServerUser(passwordCopy)
        // Settings appended to postgresql.conf: local-only listening, the socket in the folder.
        var settings = """

            # Added by orchestratord's embedded database.
            listen_addresses = '127.0.0.1'
            unix_socket_directories = '\(dataDirectory.path.replacingOccurrences(of: "'", with: "''"))'
            max_connections = 200
            # The task queue churns: let autovacuum visit it every 10 s, not every minute (the
            # tables' own thresholds are set by migration 0008; docs/POSTGRES.md).
            autovacuum_naptime = 10s

            """
        if !durable { settings += "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n" }
        let conf = dataDirectory.appendingPathComponent("postgresql.conf")
        let handle = try FileHandle(forWritingTo: conf)
        handle.seekToEndOfFile()
        handle.write(Data(settings.utf8))
        try handle.close()
    }

    /// A `postmaster.pid` left by a crash makes `pg_ctl` believe a server runs; it is removed when
    /// its process no longer exists.
    private func clearStalePidFile() throws {
        let pidFile = dataDirectory.appendingPathComponent("postmaster.pid")
        guard let text = try? String(contentsOf: pidFile, encoding: .utf8),
            let pid = text.split(separator: "\n").first.flatMap({ Int32($0.trimmingCharacters(in: .whitespaces)) })
        else { return }
        if kill(pid, 0) != 0 && errno == ESRCH {
            logger.warning("removing a stale postmaster.pid", metadata: ["pid": "\(pid)"])
            try FileManager.default.removeItem(at: pidFile)
        }
    }

    private func isRunning() throws -> Bool {
        // pg_ctl status: 0 = running, 3 = not running, 4 = no data folder.
        let status = try run(serverCommand("pg_ctl", ["-D", dataDirectory.path, "status"]), allowFailure: true)
        return status.code == 0
    }

    // MARK: - Processes

    /// As root, the server runs as `postgres`, which must be able to enter every folder above the
    /// data folder; say so plainly instead of letting initdb fail with "Permission denied".
    private func checkTraversable(_ folder: URL) throws {
        guard runsAsRoot else { return }
        var current = folder.standardizedFileURL
        while current.path != "/" {
            var info = stat()
            if stat(current.path, &info) == 0, info.st_mode & 0o001 == 0 {
                throw EmbeddedPostgresError(message: """
                    the embedded PostgreSQL runs as the 'postgres' user, which cannot enter \(current.path) \
                    (mode \(String(info.st_mode & 0o777, radix: 8))); choose a data folder elsewhere (e.g. --data-dir /var/tmp/orchestrator/pgdata) \
                    or give that folder o+x
                    """)
            }
            current = current.deletingLastPathComponent()
        }
    }

    private func handToServerUser(_ url: URL) throws {
        guard runsAsRoot else { return }
        guard let user = getpwnam(Self.superuser) else {
            throw EmbeddedPostgresError(message: "running as root needs the '\(Self.superuser)' system user, which does not exist")
        }
        let (uid, gid) = (user.pointee.pw_uid, user.pointee.pw_gid)
        try run(["/bin/chown", "-R", "\(uid):\(gid)", url.path], allowFailure: false)
    }

    private func serverCommand(_ tool: String, _ arguments: [String]) -> [String] {
        let executable = binDirectory.appendingPathComponent(tool).path
        return runsAsRoot ? ["/usr/sbin/runuser", "-u", Self.superuser, "--", executable] + arguments : [executable] + arguments
    }

    private func runServerCommand(_ tool: String, _ arguments: [String]) throws {
        try run(serverCommand(tool, arguments), allowFailure: false)
    }

    /// Runs a command to completion, capturing its output for error messages.
    ///
    /// Uses `posix_spawn` rather than Foundation's `Process`: `Process` detects the child's exit
    /// through a socket the child inherits, and `pg_ctl start` leaves a daemon (the postmaster)
    /// holding every inherited descriptor, so `waitUntilExit` would never return. Here the
    /// child's output goes to a temporary file and the exit is observed with `waitpid`.
    @discardableResult
    private func run(_ command: [String], allowFailure: Bool) throws -> (code: Int32, output: String) {
        let outputPath = FileManager.default.temporaryDirectory.appendingPathComponent(
            "orch-pg-cmd-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).log"
        ).path
        defer { unlink(outputPath) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        var pid: pid_t = 0
        let argv: [UnsafeMutablePointer<CChar>?] = command.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        let spawned = posix_spawn(&pid, command[0], &actions, nil, argv, environ)
        guard spawned == 0 else {
            throw EmbeddedPostgresError(message: "could not run \(command[0]): \(String(cString: strerror(spawned)))")
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            guard errno == EINTR else { throw EmbeddedPostgresError(message: "waitpid failed: errno \(errno)") }
        }
        let exited = status & 0x7f == 0
        let code = exited ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        let text = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        if code != 0 && !allowFailure {
            throw EmbeddedPostgresError(
                message:
                    "\(command.joined(separator: " ")) failed with status \(code): \(text.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        return (code, text)
    }

    private func writeSecret(_ secret: String, to url: URL) throws {
        try? FileManager.default.removeItem(at: url)
        guard FileManager.default.createFile(atPath: url.path, contents: Data(secret.utf8), attributes: [.posixPermissions: 0o600]) else {
            throw EmbeddedPostgresError(message: "could not write \(url.path)")
        }
    }

    static func randomPassword() -> String {
        var generator = SystemRandomNumberGenerator()
        let alphabet = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
        return String((0..<32).map { _ in alphabet[Int(generator.next(upperBound: UInt64(alphabet.count)))] })
    }
}
