/// Lease and dispatch timing. Every value has a default an operator can override.
public struct DispatchConfiguration: Sendable {
    /// Default lease time-to-live (a task's own lease TTL wins).
    public var leaseTTL: Duration = .seconds(30)
    /// How often executors are asked to heartbeat (told in Welcome).
    public var heartbeatInterval: Duration = .seconds(10)
    /// How often the lease keeper pushes live leases' expiry to the database, in one batch.
    public var keeperInterval: Duration = .seconds(1)
    /// How often the reaper requeues leases that expired in the database.
    public var reaperInterval: Duration = .seconds(1)
    /// For this long after the server starts, its reaper requeues no expired lease (nor an attempt
    /// past its start_to_close deadline; retries whose backoff elapsed are still made ready): the
    /// executors of a server that was restarted (or of every server, after a full restart)
    /// reconnect with backoff and resume their leases, and the time no server ran does not count
    /// against them (orchestratord sets it to the lease TTL). Other servers' reapers are not held back.
    public var startupGrace: Duration = .zero
    /// A reaper sweep slower than this met the database unreachable: a network partition
    /// blackholes statements (they hang, then succeed on a new connection) rather than failing
    /// them, so the reaper treats it as an outage that began when the sweep did.
    public var slowSweep: Duration = .seconds(3)
    /// Longest `PollTasks` wait.
    public var maxPollWait: Duration = .seconds(60)
    /// An executor whose stream has not accepted an assignment for this long (flow control
    /// stalled: it stopped reading) loses its stream and its leases.
    public var stalledSendLimit: Duration = .seconds(30)
    /// Safety net against a lost notification: a waiting dispatcher looks again after this long.
    public var idleRecheck: Duration = .seconds(5)
    /// Upper bound of an executor's `max_in_flight`.
    public var maxInFlightLimit: Int = 1000
    /// Largest assignment handed to an executor (nil: no limit). Upstream results travel in the
    /// assignment, so it can outgrow what a client accepts (gRPC's default 4 MiB) even when each
    /// result is under the server's own receive limit; the client refuses it, and without this
    /// the lease lapsed again and again until the attempts ran out ("lease expired").
    public var maxAssignmentBytes: Int? = 4 * 1024 * 1024
    /// The encoded size of a task's assignment (the gRPC layer's); consulted only for tasks
    /// whose results, payload and inputs alone come near `maxAssignmentBytes`.
    public var assignmentSize: @Sendable (ClaimedTask) -> Int = { $0.assignmentBytesLowerBound }

    public init() {}

    var leaseTTLMillis: Int64 { Self.millis(leaseTTL) }

    static func millis(_ duration: Duration) -> Int64 {
        duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
    }
}

/// What an executor says about itself when it connects (or polls).
public struct ExecutorIdentity: Sendable, Hashable {
    public var executorID: String
    public var capabilities: Set<String>
    public var labels: [String: String]
    public var maxInFlight: Int
    /// Tenants whose tasks it may receive; nil = every tenant.
    public var tenants: Set<String>?
    /// What the executor said it is (`ExecutorHello.version`), for operators.
    public var version: String
    /// When the token the stream was opened with stops being accepted (its `exp` plus the
    /// allowed clock skew); nil without authentication. From then on the stream is handed no new
    /// task, and it ends UNAUTHENTICATED once it holds none.
    public var credentialsExpireAt: UnixMillis?

    /// Reads the clock only when there is an expiry (never without authentication): direct
    /// dispatch asks every idle stream this for every new workflow.
    public func credentialsExpired(_ clock: any WallClock) -> Bool {
        guard let expiry = credentialsExpireAt else { return false }
        return clock.now() >= expiry
    }

    public init(
        executorID: String, capabilities: Set<String>, labels: [String: String] = [:], maxInFlight: Int = 1, tenants: Set<String>? = nil,
        version: String = ""
    ) {
        self.executorID = executorID
        self.capabilities = capabilities
        self.labels = labels
        self.maxInFlight = maxInFlight
        self.tenants = tenants
        self.version = version
    }
}

/// Messages an executor sends on its lease stream after the hello.
public enum SessionInput: Sendable {
    /// Extend these leases (empty = all held on this stream).
    case heartbeat([LeaseToken])
    case report(LeaseToken, TaskReport.Outcome)
    /// A report that names no lease: refused with this reason, the stream goes on.
    case invalidReport(String)
    /// No new assignments on this stream; it stays open for what it holds (graceful shutdown).
    case drain
}

/// Messages the server sends on a lease stream.
public enum SessionOutput: Sendable {
    case welcome(sessionID: String, heartbeatIntervalMillis: Int64, leaseTTLMillis: Int64, resumed: [LeaseToken], rejected: [LeaseToken])
    case assignment(ClaimedTask)
    case revocation(LeaseToken, reason: String)
    case ack(LeaseToken, ReportResult)
    /// The answer to `SessionInput.invalidReport`: an ack refusing it (INVALID_ARGUMENT).
    case invalidReportAck(String)
    /// A report that could not be applied (the database unavailable, say): an ack with the
    /// error's status, mapped at the edge; the executor may send it again.
    case reportFailedAck(LeaseToken, any Error)
    case heartbeatAck([LeaseState])
}
