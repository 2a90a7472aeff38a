/// Settings of a `PostgresPool`.
public struct PostgresPoolConfiguration: Sendable {
    /// A `postgresql://` URL or a libpq keyword/value string.
    public var conninfo: String
    /// Most connections open at once (each has its own thread).
    public var maxConnections: Int
    /// A connection idle for longer than this is checked with `SELECT 1` before it is lent out.
    /// Connections that were idle when another connection was found dead are always checked.
    public var healthCheckAfterIdle: Duration
    /// A connection left idle this long is closed (checked whenever a connection is returned;
    /// idle ones are lent newest first, so after a burst the surplus ages out and the pool
    /// shrinks back to what the load needs). nil keeps connections open until `close()`.
    public var idleTimeout: Duration? = .seconds(300)
    /// Longest a caller waits for a free connection before `.poolTimeout`.
    public var acquireTimeout: Duration
    /// How long opening a connection keeps retrying (the server may be restarting).
    public var connectTimeout: Duration
    /// Sees every `withTransaction` call (the server records them as trace spans); nil = none.
    public var transactionObserver: (any PostgresTransactionObserver)?
    /// Delays between connection attempts.
    public var connectBackoff: Backoff
    /// Metrics hooks (none by default).
    public var instrumentation = PostgresInstrumentation()
    /// The server ends a session that sits inside a transaction without sending anything for this
    /// long (`idle_in_transaction_session_timeout`), releasing its row locks. Our transactions never
    /// pause between statements, so this only fires for a client that vanished mid-transaction
    /// without the server noticing (a half-open TCP connection after a network partition), whose
    /// locks would otherwise stall every writer of those rows until TCP keepalive gives up (about
    /// two hours by default). nil leaves the server's setting.
    public var idleInTransactionTimeout: Duration? = .seconds(60)
    /// Settings of every connection, sent once when it opens (in the same round trip as the idle
    /// timeout). JIT is off by default: PostgreSQL compiles a query whose estimated cost passes
    /// `jit_above_cost` (100,000 by default), and a page of workflows with large task counts
    /// passes it, paying 15 ms or more of compilation for a query that runs in less; nothing a
    /// transactional service runs is long enough to win it back.
    public var sessionSettings: [PostgresSetting] = [PostgresSetting("jit", "off")]

    public init(
        conninfo: String, maxConnections: Int = 10, healthCheckAfterIdle: Duration = .seconds(10),
        acquireTimeout: Duration = .seconds(30), connectTimeout: Duration = .seconds(15),
        connectBackoff: Backoff = Backoff(initial: .milliseconds(50), maximum: .seconds(2))
    ) {
        precondition(maxConnections > 0, "a pool needs at least one connection")
        self.conninfo = conninfo
        self.maxConnections = maxConnections
        self.healthCheckAfterIdle = healthCheckAfterIdle
        self.acquireTimeout = acquireTimeout
        self.connectTimeout = connectTimeout
        self.connectBackoff = connectBackoff
    }
}

/// Exponential backoff with full jitter: attempt n waits a random time in
/// [delay/2, delay] where delay = min(initial × multiplier^(n-1), maximum). Jitter keeps
/// colliding transactions (and reconnecting servers) from retrying in lockstep.
public struct Backoff: Sendable {
    public var initial: Duration
    public var maximum: Duration
    public var multiplier: Double

    public init(initial: Duration, maximum: Duration, multiplier: Double = 2) {
        self.initial = initial
        self.maximum = maximum
        self.multiplier = multiplier
    }

    /// The delay before retry number `attempt` (from 1), given a random fraction in [0, 1].
    /// Computed in seconds as a `Double` and capped there: a long run of attempts (a pool retrying
    /// for a long connect timeout with short delays) made `initial × multiplier^n` overflow
    /// `Duration` and trap.
    public func delay(attempt: Int, random: Double) -> Duration {
        let exponent = Double(min(max(0, attempt - 1), 64))
        let capped = min(initial / .seconds(1) * pow(multiplier, exponent), maximum / .seconds(1))
        return .seconds(capped * (0.5 + 0.5 * random))
    }
}

private func pow(_ base: Double, _ exponent: Double) -> Double {
    var result = 1.0
    var remaining = Int(exponent)
    while remaining > 0 {
        result *= base
        remaining -= 1
    }
    return result
}
