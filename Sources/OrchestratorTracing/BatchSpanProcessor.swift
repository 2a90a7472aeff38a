#if canImport(Glibc)
    import Glibc
#endif

/// Queues finished spans and exports them in batches on a thread of its own, so that ending a
/// span costs one short lock and never waits for the collector.
///
/// The queue is bounded: when the collector is slow or down and the queue is full, new spans
/// are dropped and counted (`statistics.dropped`) rather than growing memory or slowing RPCs.
/// A batch whose export fails is dropped too (counted in `failedSpans`): retrying would only
/// build a backlog behind a collector that is not keeping up.
///
/// Threading: `queue`, `stopping`, `stopped` and the counters are guarded by `mutex`; the
/// exporter thread waits on `condition`. The thread holds a strong reference to `self` until it exits.
public final class BatchSpanProcessor: SpanProcessor, @unchecked Sendable {
    public struct Configuration: Sendable {
        /// Most spans waiting for export; beyond it spans are dropped.
        public var maxQueueSize = 2048
        /// Most spans per export request.
        public var maxBatchSize = 512
        /// Longest a finished span waits before its batch is sent.
        public var scheduleDelayMillis = 1000

        public init() {}
    }

    public struct Statistics: Sendable, Hashable {
        public var queued = 0
        public var exported = 0
        public var dropped = 0
        public var failedSpans = 0
        public var failedExports = 0
    }

    let exporter: any SpanExporter
    let configuration: Configuration
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    /// Guarded by `mutex`.
    private var queue: [SpanData] = []
    private var stopping = false
    private var stopped = false
    private var counters = Statistics()
    private var stopWaiters: [CheckedContinuation<Void, Never>] = []
    /// Called (on the exporter thread) when exports start failing or recover: for a log line
    /// per change, not per batch.
    private let onHealthChange: @Sendable (_ error: ExportError?) -> Void

    public init(
        exporter: any SpanExporter, configuration: Configuration = Configuration(),
        onHealthChange: @escaping @Sendable (_ error: ExportError?) -> Void = { _ in }
    ) {
        self.exporter = exporter
        self.configuration = configuration
        self.onHealthChange = onHealthChange
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(condition, nil)
        var thread = pthread_t()
        let box = Unmanaged.passRetained(self).toOpaque()
        let result = pthread_create(&thread, nil, { argument in
            let owner = Unmanaged<BatchSpanProcessor>.fromOpaque(argument!).takeRetainedValue()
            owner.loop()
            return nil
        }, box)
        precondition(result == 0, "pthread_create failed: \(result)")
        pthread_detach(thread)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
        condition.deallocate()
    }

    public func onEnd(_ span: SpanData) {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        guard !stopping, queue.count < configuration.maxQueueSize else {
            counters.dropped += 1
            return
        }
        queue.append(span)
        if queue.count >= configuration.maxBatchSize { pthread_cond_signal(condition) }
    }

    public var statistics: Statistics {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        var copy = counters
        copy.queued = queue.count
        return copy
    }

    /// Exports what is queued, then stops the thread. Waits for the last export (bounded by the
    /// exporter's timeout) without blocking the caller's thread.
    public func shutdown() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            pthread_mutex_lock(mutex)
            if stopped {
                pthread_mutex_unlock(mutex)
                continuation.resume()
                return
            }
            stopping = true
            stopWaiters.append(continuation)
            pthread_cond_signal(condition)
            pthread_mutex_unlock(mutex)
        }
    }

    private func loop() {
        while true {
            pthread_mutex_lock(mutex)
            var deadline = timespec()
            clock_gettime(CLOCK_REALTIME, &deadline)
            let delay = configuration.scheduleDelayMillis
            deadline.tv_sec += delay / 1000
            deadline.tv_nsec += (delay % 1000) * 1_000_000
            if deadline.tv_nsec >= 1_000_000_000 {
                deadline.tv_sec += 1
                deadline.tv_nsec -= 1_000_000_000
            }
            while queue.count < configuration.maxBatchSize && !stopping {
                if pthread_cond_timedwait(condition, mutex, &deadline) == ETIMEDOUT { break }
            }
            let batch = Array(queue.prefix(configuration.maxBatchSize))
            queue.removeFirst(batch.count)
            pthread_mutex_unlock(mutex)

            let sent = batch.isEmpty || send(batch)

            pthread_mutex_lock(mutex)
            if stopping && !sent {
                // Shutting down and the collector is failing: give up on the rest instead of
                // holding the process for one timeout per remaining batch.
                counters.failedSpans += queue.count
                queue.removeAll()
            }
            if stopping && queue.isEmpty {
                stopped = true
                let waiters = stopWaiters
                stopWaiters = []
                pthread_mutex_unlock(mutex)
                for waiter in waiters { waiter.resume() }
                return
            }
            pthread_mutex_unlock(mutex)
        }
    }

    /// Guarded by being touched only on the exporter thread.
    private var failing = false

    /// Exports one batch; returns whether the collector took it.
    private func send(_ batch: [SpanData]) -> Bool {
        var failure: ExportError?
        do {
            try exporter.export(batch)
        } catch {
            failure = error
        }
        pthread_mutex_lock(mutex)
        if failure == nil {
            counters.exported += batch.count
        } else {
            counters.failedExports += 1
            counters.failedSpans += batch.count
        }
        pthread_mutex_unlock(mutex)
        if (failure != nil) != failing {
            failing = failure != nil
            onHealthChange(failure)
        }
        return failure == nil
    }
}
