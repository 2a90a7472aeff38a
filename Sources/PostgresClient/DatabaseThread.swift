import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A dedicated OS thread that runs blocking database work, one job at a time, in FIFO order.
///
/// libpq's synchronous calls block their thread until the server answers. Running them on the
/// Swift cooperative pool would starve every other task (the pool has one thread per core), and
/// running them on an I/O thread would stall every connection on it (DESIGN §4). So each
/// `PostgresConnection` lives on one `DatabaseThread`, and async callers hand it work with
/// `run(_:)`, suspending (not blocking) until the job is done.
///
/// Threading: `jobs` and `stopping` are guarded by `mutex` and signalled through `condition`;
/// everything a job touches is touched only on this thread. The thread exits after `shutdown()`
/// once the queue has drained, and holds a strong reference to `self` until then.
final class DatabaseThread: @unchecked Sendable {
    private var mutex = pthread_mutex_t()
    private var condition = pthread_cond_t()
    /// Guarded by `mutex`.
    private var jobs: [() -> Void] = []
    /// Guarded by `mutex`.
    private var stopping = false
    private var thread: pthread_t = 0
    let name: String

    init(name: String) {
        self.name = name
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&condition, nil)
        let box = Unmanaged.passRetained(self).toOpaque()
        let result = pthread_create(
            &thread, nil,
            { argument in
                let owner = Unmanaged<DatabaseThread>.fromOpaque(argument!).takeRetainedValue()
                owner.loop()
                return nil
            }, box)
        precondition(result == 0, "pthread_create failed: \(result)")
        pthread_detach(thread)
    }

    deinit {
        pthread_cond_destroy(&condition)
        pthread_mutex_destroy(&mutex)
    }

    /// Runs `body` on this thread and returns its result to the awaiting caller, which is
    /// suspended (not blocked) meanwhile. Thread-confined objects such as a `PostgresConnection`
    /// are reached only from inside such closures.
    func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            let accepted = enqueue {
                continuation.resume(with: Result { try body() })
            }
            if !accepted { continuation.resume(throwing: PostgresError.client(.poolClosed, "database thread \(name) has stopped")) }
        }
    }

    /// Queues a job without waiting for it. Returns false when the thread is shutting down.
    @discardableResult
    func enqueue(_ job: @escaping () -> Void) -> Bool {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        if stopping { return false }
        jobs.append(job)
        pthread_cond_signal(&condition)
        return true
    }

    /// The name of the database thread the caller runs on; nil on any other thread (tests check
    /// where blocking work ran).
    static func currentName() -> String? {
        pthread_getspecific(currentKey).map { Unmanaged<DatabaseThread>.fromOpaque($0).takeUnretainedValue().name }
    }

    /// Thread-specific slot holding each database thread's owner (unretained: the thread holds
    /// its owner strongly until it exits).
    private static let currentKey: pthread_key_t = {
        var key = pthread_key_t()
        precondition(pthread_key_create(&key, nil) == 0, "pthread_key_create failed")
        return key
    }()

    /// Lets the thread finish the jobs already queued, then exit. Idempotent.
    func shutdown() {
        pthread_mutex_lock(&mutex)
        stopping = true
        pthread_cond_signal(&condition)
        pthread_mutex_unlock(&mutex)
    }

    private func loop() {
        pthread_setspecific(Self.currentKey, Unmanaged.passUnretained(self).toOpaque())
        var batch: [() -> Void] = []
        while true {
            pthread_mutex_lock(&mutex)
            while jobs.isEmpty && !stopping { pthread_cond_wait(&condition, &mutex) }
            if jobs.isEmpty && stopping {
                pthread_mutex_unlock(&mutex)
                return
            }
            swap(&batch, &jobs)
            pthread_mutex_unlock(&mutex)
            for job in batch { job() }
            batch.removeAll(keepingCapacity: true)
        }
    }
}
