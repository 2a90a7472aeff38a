/// Transaction isolation levels (`BEGIN ISOLATION LEVEL …`).
public enum PostgresIsolation: String, Sendable {
    case readCommitted = "READ COMMITTED"
    case repeatableRead = "REPEATABLE READ"
    case serializable = "SERIALIZABLE"
}

/// How often and how patiently a transaction is re-run after a transient failure.
public struct PostgresRetryPolicy: Sendable {
    /// Total attempts, including the first.
    public var maxAttempts: Int
    public var backoff: Backoff
    /// Which errors re-run the transaction. By default serialization failures, deadlocks, and a
    /// connection lost before COMMIT was sent (the server rolled the transaction back; the retry
    /// runs on a fresh connection). A connection lost during COMMIT is `.commitOutcomeUnknown`
    /// and is not retried.
    public var isRetryable: @Sendable (PostgresError) -> Bool
    /// Random fraction in [0, 1] for jitter; injectable so tests can make delays predictable.
    public var random: @Sendable () -> Double

    public init(
        maxAttempts: Int = 5, backoff: Backoff = Backoff(initial: .milliseconds(5), maximum: .milliseconds(500)),
        isRetryable: @escaping @Sendable (PostgresError) -> Bool = { $0.isTransient || $0.code == .connectionLost },
        random: @escaping @Sendable () -> Double = { Double.random(in: 0...1) }
    ) {
        self.maxAttempts = maxAttempts
        self.backoff = backoff
        self.isRetryable = isRetryable
        self.random = random
    }

    public static let `default` = PostgresRetryPolicy()
    /// Run once; never retry.
    public static let none = PostgresRetryPolicy(maxAttempts: 1)
}

extension PostgresPool {
    /// Runs `body` in a transaction on one borrowed connection and commits it.
    ///
    /// Any error thrown by `body` (or by `COMMIT`) rolls the transaction back. When the error is
    /// retryable under `retry` (a serialization failure or deadlock by default), the whole
    /// transaction runs again after a jittered backoff, so `body` must not have effects outside
    /// the database that cannot be repeated.
    /// - Throws: the last error once attempts are exhausted or the error is not retryable.
    /// - Parameter settings: `SET LOCAL` settings for this transaction (sent with BEGIN).
    @discardableResult
    public func withTransaction<T>(
        isolation: PostgresIsolation = .readCommitted, retry: PostgresRetryPolicy = .default,
        settings: [PostgresSetting] = [], _ body: (PostgresSession) async throws -> T
    ) async throws -> T {
        try await retryingTransaction(isolation: isolation, retry: retry) { session in
            try await session.runTransaction(isolation: isolation, settings: settings, body)
        }
    }

    /// Runs attempts of a transaction (`attempt` begins, runs and commits one on the session it
    /// is given) until one succeeds or the error is not retryable; see `withTransaction`.
    func retryingTransaction<T>(
        isolation: PostgresIsolation, retry: PostgresRetryPolicy, _ runAttempt: (PostgresSession) async throws -> T
    ) async throws -> T {
        let observation = configuration.transactionObserver?.transactionStarted(isolation: isolation)
        var attempt = 0
        while true {
            attempt += 1
            do {
                let value = try await withConnection(runAttempt)
                observation?.transactionEnded(attempts: attempt, error: nil)
                return value
            } catch let error as PostgresError where attempt < retry.maxAttempts && retry.isRetryable(error) {
                let delay = retry.backoff.delay(attempt: attempt, random: retry.random())
                logger.debug(
                    "retrying transaction", metadata: ["attempt": "\(attempt)", "code": "\(error.code)", "delay": "\(delay)"])
                do {
                    try await Task.sleep(for: delay)
                } catch {
                    observation?.transactionEnded(attempts: attempt, error: error)
                    throw error
                }
            } catch {
                observation?.transactionEnded(attempts: attempt, error: error)
                throw error
            }
        }
    }
}

extension PostgresSession {
    /// One attempt: BEGIN, body, COMMIT; ROLLBACK on any error.
    func runTransaction<T>(
        isolation: PostgresIsolation, settings: [PostgresSetting] = [], _ body: (PostgresSession) async throws -> T
    ) async throws -> T {
        try await simpleQuery(Self.beginStatements(isolation: isolation, settings: settings).joined(separator: "; "))
        do {
            let result = try await body(self)
            let commit: PostgresRows
            do {
                commit = try await simpleQuery("COMMIT")
            } catch var error as PostgresError where error.code == .connectionLost {
                error.code = .commitOutcomeUnknown
                error.message = "connection lost during COMMIT; the transaction may or may not have committed: \(error.message)"
                throw error
            }
            // COMMIT of a transaction that already failed (the body caught an error and went on)
            // succeeds with the tag ROLLBACK: nothing was stored, so say so.
            if commit.commandTag == "ROLLBACK" {
                throw PostgresError.client(.protocolViolation, "the transaction had failed and was rolled back at COMMIT")
            }
            return result
        } catch {
            await rollBackIfOpen()
            throw error
        }
    }

    static func beginStatements(isolation: PostgresIsolation, settings: [PostgresSetting]) -> [String] {
        ["BEGIN ISOLATION LEVEL \(isolation.rawValue)"] + settings.map { "SET LOCAL \($0.name) = \($0.value)" }
    }

    func rollBackIfOpen() async {
        _ = try? await withBlockingConnection { connection in
            if connection.isConnected && connection.transactionStatus != .idle { try connection.simpleQuery("ROLLBACK") }
        }
    }
}
