import Synchronization
import Testing

@testable import PostgresClient

/// Records what the pool tells a transaction observer.
final class RecordingObserver: PostgresTransactionObserver {
    @TaskLocal static var label: String?

    struct Ended: Sendable {
        var label: String?
        var isolation: PostgresIsolation
        var attempts: Int
        var error: String?
    }

    let ended = Mutex<[Ended]>([])

    func transactionStarted(isolation: PostgresIsolation) -> (any PostgresTransactionObservation)? {
        // Read here, in the caller's task: this is how a tracer finds the current span.
        Observation(owner: self, label: Self.label, isolation: isolation)
    }

    struct Observation: PostgresTransactionObservation {
        let owner: RecordingObserver
        let label: String?
        let isolation: PostgresIsolation
        func transactionEnded(attempts: Int, error: (any Error)?) {
            owner.ended.withLock { $0.append(Ended(label: label, isolation: isolation, attempts: attempts, error: error.map { "\($0)" })) }
        }
    }
}

@Suite("Transaction observer")
struct TransactionObserverTests {
    @Test func seesEachTransactionOnceWithItsAttemptsOutcomeAndTheCallersTaskLocals() async throws {
        let observer = RecordingObserver()
        try await TestDatabase.withDatabase { url in
            var configuration = PostgresPoolConfiguration(conninfo: url, maxConnections: 2)
            configuration.transactionObserver = observer
            let pool = PostgresPool(configuration: configuration)
            defer { pool.close() }

            try await RecordingObserver.$label.withValue("committed") {
                try await pool.withTransaction { try await $0.simpleQuery("SELECT 1") }
            }
            await #expect(throws: Boom.self) {
                try await RecordingObserver.$label.withValue("thrown") {
                    try await pool.withTransaction { _ in throw Boom() }
                }
            }
            // A serialization failure on the first attempt: retried, then committed; one observation.
            let tries = Counter()
            try await RecordingObserver.$label.withValue("retried") {
                try await pool.withTransaction(
                    isolation: .serializable,
                    retry: PostgresRetryPolicy(maxAttempts: 3, backoff: Backoff(initial: .milliseconds(1), maximum: .milliseconds(2)))
                ) { tx in
                    if tries.increment() == 1 {
                        try await tx.simpleQuery(
                            "DO $$ BEGIN RAISE EXCEPTION USING ERRCODE = 'serialization_failure', MESSAGE = 'forced'; END $$")
                    }
                }
            }
            // Plain connections are not transactions: not observed.
            try await pool.withConnection { try await $0.simpleQuery("SELECT 1") }
        }
        let ended = observer.ended.withLock { $0 }
        #expect(ended.map(\.label) == ["committed", "thrown", "retried"])
        #expect(ended.map(\.attempts) == [1, 1, 2])
        #expect(ended[0].error == nil && ended[2].error == nil)
        #expect(ended[1].error == "Boom()")
        #expect(ended[2].isolation == .serializable && ended[0].isolation == .readCommitted)
    }
}
