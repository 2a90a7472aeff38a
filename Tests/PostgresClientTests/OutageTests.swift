import Foundation
import Logging
import Testing

@testable import PostgresClient

@Suite("Database outages")
struct OutageTests {
    /// A pool that counts its failed connection attempts in `failures` and logs nothing.
    static func countingPool(_ failures: Counter, _ configuration: PostgresPoolConfiguration) -> PostgresPool {
        var configuration = configuration
        configuration.instrumentation = PostgresInstrumentation(connectAttempted: { failed in
            if failed { failures.increment() }
        })
        var quiet = Logger(label: "outage-test")
        quiet.logLevel = .critical
        return PostgresPool(configuration: configuration, logger: quiet)
    }

    /// Before: every caller retried for the whole connect timeout (15 s by default), so during an
    /// outage each call of the server took that long to fail. Counted in connection attempts, not
    /// seconds: once the pool has been connected, a refused attempt counts the database
    /// unreachable at once, callers make one attempt each, and the first connection that opens
    /// again ends the outage.
    @Test func onceConnectedCallersTryOnceUntilTheDatabaseIsBack() async throws {
        try await TestDatabase.withCluster(name: "outage") { try await onceConnectedCallersTryOnce(cluster: $0) }
    }

    private func onceConnectedCallersTryOnce(cluster: EmbeddedPostgres) async throws {
        let failedAttempts = Counter()
        let pool = Self.countingPool(failedAttempts, PostgresPoolConfiguration(
            conninfo: cluster.url(database: "postgres"), maxConnections: 2, healthCheckAfterIdle: .zero,
            connectTimeout: .seconds(1), connectBackoff: Backoff(initial: .milliseconds(20), maximum: .milliseconds(50))))
        defer { pool.close() }
        #expect(try await pool.withConnection { try await $0.query("SELECT 1").count } == 1)

        try await TestDatabase.offload { try cluster.stop() }
        let error = await #expect(throws: PostgresError.self) { try await pool.withConnection { try await $0.query("SELECT 1") } }
        #expect(error?.isConnectionLoss == true)
        #expect(failedAttempts.value == 1, "refused once connected: no retries")
        #expect(pool.isUnreachable)

        for _ in 0..<4 {
            let before = failedAttempts.value
            let again = await #expect(throws: PostgresError.self) { try await pool.withConnection { try await $0.query("SELECT 1") } }
            #expect(again?.isConnectionLoss == true)
            #expect(failedAttempts.value == before + 1)
        }
        #expect(pool.statistics.open == 0)
        #expect(pool.statistics.lent == 0)

        try await TestDatabase.offload { try cluster.start() }
        #expect(try await pool.withConnection { try await $0.query("SELECT 1").count } == 1)
        #expect(!pool.isUnreachable)
    }

    /// A server started before its database: until the first connection opens, refused attempts
    /// are retried for the whole connect timeout.
    @Test func neverConnectedThePoolRetriesForTheWholeConnectTimeout() async throws {
        let failedAttempts = Counter()
        // Port 1 on loopback: nothing listens there, connections are refused at once. (A port
        // found free and closed again may be taken by another test meanwhile.)
        let pool = Self.countingPool(failedAttempts, PostgresPoolConfiguration(
            conninfo: "host=127.0.0.1 port=1 user=nobody dbname=nothing", maxConnections: 1,
            // Generous: with the whole suite on two cores one attempt has taken over 5 s to return.
            connectTimeout: .seconds(10), connectBackoff: Backoff(initial: .milliseconds(20), maximum: .milliseconds(50))))
        defer { pool.close() }
        let started = ContinuousClock.now
        let error = await #expect(throws: PostgresError.self) { try await pool.withConnection { try await $0.query("SELECT 1") } }
        let took = ContinuousClock.now - started
        #expect(error?.code == .connectionFailed)
        #expect(failedAttempts.value >= 2, "retried, not given up after one refusal: \(String(describing: error)) after \(took)")
        #expect(pool.isUnreachable)
    }

    /// A host that accepts connections and never answers (a blackholing firewall, a hung
    /// server): each attempt lasts libpq's `connect_timeout`. Never connected, the pool retries
    /// for its whole `connectTimeout` (the database may be starting); once unreachable, one caller
    /// at a time makes that attempt, the others fail without waiting for it.
    @Test func onAnUnansweringHostOneCallerAtATimeTriesToConnect() async throws {
        let listener = try SilentListener()
        let failedAttempts = Counter()
        let pool = Self.countingPool(failedAttempts, PostgresPoolConfiguration(
            conninfo: "host=\(listener.folder) port=5432 user=nobody dbname=nothing connect_timeout=2", maxConnections: 4,
            connectTimeout: .milliseconds(500)))
        defer { pool.close() }
        await #expect(throws: PostgresError.self) { try await pool.withConnection { try await $0.query("SELECT 1") } }
        #expect(failedAttempts.value == 1)
        #expect(pool.isUnreachable)

        let failures = Counter()
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<3 {
                group.addTask {
                    do {
                        _ = try await pool.withConnection { try await $0.query("SELECT 1") }
                    } catch let error as PostgresError where error.isConnectionLoss {
                        failures.increment()
                    } catch {}
                }
            }
        }
        #expect(failures.value == 3)
        #expect(failedAttempts.value == 2, "one of the three callers tried; the others failed without an attempt")
    }

    /// A server that is there but cannot take a connection now is waited for within the connect
    /// timeout; one that refuses or does not answer has gone away.
    @Test func connectFailuresAreClassifiedByWhetherTheServerIsThere() {
        #expect(PostgresConnection.classifyConnectFailure("FATAL:  sorry, too many clients already") == .cannotConnectNow)
        #expect(PostgresConnection.classifyConnectFailure(
            "FATAL:  remaining connection slots are reserved for non-replication superuser connections") == .cannotConnectNow)
        #expect(PostgresConnection.classifyConnectFailure("FATAL:  the database system is starting up") == .cannotConnectNow)
        #expect(PostgresConnection.classifyConnectFailure(
            "connection to server at \"127.0.0.1\", port 1 failed: Connection refused") == .connectionFailed)
        #expect(PostgresConnection.classifyConnectFailure("timeout expired") == .connectionFailed)
    }

    /// A pool retrying for a long connect timeout with short delays reached attempt numbers whose
    /// `initial × multiplier^n` overflowed `Duration` and trapped (found by the test above).
    @Test func backoffDelaysStayWithinTheirBoundsWhateverTheAttempt() {
        let backoff = Backoff(initial: .milliseconds(20), maximum: .milliseconds(50))
        for attempt in [1, 2, 3, 10, 64, 65, 200, 1_000, Int.max] {
            for random in [0.0, 0.5, 1.0] {
                let delay = backoff.delay(attempt: attempt, random: random)
                #expect(delay >= .milliseconds(10) && delay <= .milliseconds(50), "attempt \(attempt)")
            }
        }
        #expect(backoff.delay(attempt: 1, random: 1) == .milliseconds(20))
        #expect(backoff.delay(attempt: 2, random: 1) == .milliseconds(40))
        #expect(backoff.delay(attempt: 3, random: 1) == .milliseconds(50))
    }

    /// libpq's defaults wait without bound for a host that drops packets and notice a vanished
    /// peer after about two hours; the connection supplies bounds unless the string names its own.
    @Test func connectionsGetTimeoutAndKeepaliveDefaultsTheirStringCanOverride() async throws {
        try await TestDatabase.withDatabase { url in
            let separator = url.contains("?") ? "&" : "?"
            let settings = try await TestDatabase.offload { () -> [String?] in
                let plain = try PostgresConnection(conninfo: url)
                let overridden = try PostgresConnection(conninfo: url + separator + "connect_timeout=7&keepalives_idle=45")
                return [
                    plain.setting("connect_timeout"), plain.setting("keepalives_idle"), plain.setting("keepalives_count"),
                    overridden.setting("connect_timeout"), overridden.setting("keepalives_idle"), overridden.setting("dbname"),
                    plain.setting("dbname"),
                ]
            }
            #expect(settings[0] == "5")
            #expect(settings[1] == "30")
            #expect(settings[2] == "3")
            #expect(settings[3] == "7")
            #expect(settings[4] == "45")
            #expect(settings[5] == settings[6])
            #expect(settings[6]?.hasPrefix("test_") == true)
        }
    }
}

/// A Unix-domain socket that listens where libpq looks for a server (`<folder>/.s.PGSQL.5432`)
/// and never accepts: connections complete in the backlog, nothing ever answers. (Not a TCP port:
/// one found free could be taken by another test running at the same time.)
final class SilentListener {
    let fd: Int32
    let folder: String

    init() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("silent-\(UInt32.random(in: 0...UInt32.max))").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let socketFD = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let path = Array((folder + "/.s.PGSQL.5432").utf8CString)
        withUnsafeMutableBytes(of: &address.sun_path) { bytes in
            for (index, byte) in path.prefix(bytes.count - 1).enumerated() { bytes[index] = UInt8(bitPattern: byte) }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socketFD, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0, listen(socketFD, 16) == 0 else {
            close(socketFD)
            throw PostgresError.client(.connectionFailed, "cannot listen")
        }
        fd = socketFD
    }

    deinit {
        close(fd)
        try? FileManager.default.removeItem(atPath: folder)
    }
}
