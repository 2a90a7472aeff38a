internal import CLibevent
internal import CNGRPCShims
import Synchronization


/// Work the loop thread performs on behalf of another thread (a stream with new output, say).
/// An object enqueues itself at most once per wake-up (it keeps its own "scheduled" flag), so the
/// hot path allocates nothing.
protocol LoopTask: AnyObject, Sendable {
    func runOnLoop()
}

/// Something (a connection) that wants one `nghttp2_session_send` after the loop has drained its
/// work queue, so many streams' output is written in one go.
protocol LoopFlushable: AnyObject {
    func flushFromLoop()
}

/// Something (a plaintext connection) with output staged during a loop turn, to be written once
/// the turn's callbacks have all run (see `PlainSocket`).
protocol LoopTurnEndWriter: AnyObject {
    func writeAtTurnEnd()
}

/// One libevent `event_base` driven by its own thread.
///
/// Threading: `base` and everything registered on it are used only on the loop thread; the one
/// exception is `wakeEvent`, which other threads activate through `event_active` (safe because
/// `evthread_use_pthreads()` runs before any base is created). Other threads hand work over with
/// `execute` / `enqueue`, which append to a mutex-guarded queue and wake the loop only when the
/// queue goes from empty to non-empty.
///
/// Ownership: the loop owns `base` and `wakeEvent` and frees them in `deinit`, after the thread
/// has been joined by `stop()`.
final class EventLoop: @unchecked Sendable {
    /// The libevent base; loop thread only.
    let base: OpaquePointer
    let index: Int
    private var wakeEvent: OpaquePointer?

    private struct Pending {
        var tasks: [any LoopTask] = []
        var closures: [@Sendable () -> Void] = []
        var jobs: [UnownedJob] = []
        var armed = false
    }
    /// Guards the cross-thread work queue.
    private let pending = Mutex(Pending())
    /// Loop thread only: spare arrays swapped with the pending ones so draining does not allocate.
    private var spareTasks: [any LoopTask] = []
    private var spareClosures: [@Sendable () -> Void] = []
    private var spareJobs: [UnownedJob] = []
    /// Loop thread only: inside `drain`, which re-checks the queue before returning, so work
    /// enqueued from the loop itself needs no `event_active` (no eventfd write).
    private var draining = false
    private let drainingFlag = Atomic<Bool>(false)
    /// Runs handler tasks on this loop when `ServerConfiguration.handlerExecution == .ioThread`.
    private(set) lazy var taskExecutor = EventLoopTaskExecutor(loop: self)
    /// Loop thread only: connections to flush after this round of work.
    private var flushList: [any LoopFlushable] = []
    /// Loop thread only: where plaintext connections `recv` (`PlainSocket`); each read is handed
    /// to nghttp2 before the next one.
    let receiveBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 16)
    /// Loop thread only: connections whose staged output is written when this turn ends.
    private var turnEndWriters: [any LoopTurnEndWriter] = []

    private let threadID = Atomic<UInt>(0)
    private let stopped = Atomic<Bool>(false)
    private var thread: pthread_t = 0

    static let threadingInitialised: Bool = {
        evthread_use_pthreads()
        LibeventLog.install()
        // A peer closing its socket must not kill the process while we write to it.
        cngrpc_ignore_signal(SIGPIPE)
        return true
    }()

    init(index: Int) {
        precondition(Self.threadingInitialised)
        guard let base = event_base_new() else { fatalError("event_base_new failed") }
        self.base = base
        self.index = index
        wakeEvent = event_new(base, -1, 0, eventLoopWakeCallback, Unmanaged.passUnretained(self).toOpaque())
        let box = Unmanaged.passRetained(self).toOpaque()
        let result = pthread_create(&thread, nil, { argument in
            let loop = Unmanaged<EventLoop>.fromOpaque(argument!).takeRetainedValue()
            loop.run()
            return nil
        }, box)
        precondition(result == 0, "pthread_create failed: \(result)")
        while threadID.load(ordering: .acquiring) == 0 { sched_yield() }
    }

    deinit {
        if let wakeEvent { event_free(wakeEvent) }
        event_base_free(base)
        receiveBuffer.deallocate()
    }

    private func run() {
        var name = Array("ngrpc-io-\(index)".utf8.prefix(15)) + [0]
        _ = name.withUnsafeMutableBufferPointer { cngrpc_set_current_thread_name($0.baseAddress!) }
        threadID.store(UInt(pthread_self()), ordering: .releasing)
        // One turn at a time (the callbacks of one wait for events), so that staged output is
        // written after all of the turn's reads: answered clients wake up together at the end,
        // instead of taking the cores while the loop still has connections to read.
        repeat {
            event_base_loop(base, EVLOOP_ONCE | EVLOOP_NO_EXIT_ON_EMPTY)
            finishTurn()
        } while event_base_got_break(base) == 0
        // Run what was queued before the break so nothing is left holding continuations.
        drain()
        finishTurn()
    }

    /// True on this loop's thread.
    var inLoop: Bool { threadID.load(ordering: .relaxed) == UInt(pthread_self()) }

    /// Runs `body` on the loop thread, soon (never inline, even when called on the loop).
    func execute(_ body: @escaping @Sendable () -> Void) {
        let wake = pending.withLock { state -> Bool in
            state.closures.append(body)
            defer { state.armed = true }
            return !state.armed
        }
        if wake { activate() }
    }

    /// Schedules `task.runOnLoop()`; the caller guarantees it enqueues a task at most once until it ran.
    func enqueue(_ task: any LoopTask) {
        let wake = pending.withLock { state -> Bool in
            state.tasks.append(task)
            defer { state.armed = true }
            return !state.armed
        }
        if wake { activate() }
    }

    /// Schedules a Swift job (see `EventLoopTaskExecutor`).
    func enqueue(job: UnownedJob) {
        let wake = pending.withLock { state -> Bool in
            state.jobs.append(job)
            defer { state.armed = true }
            return !state.armed
        }
        if wake { activate() }
    }

    private func activate() {
        // The loop is draining and will look at the queue again before it sleeps.
        if drainingFlag.load(ordering: .acquiring) && inLoop { return }
        if let wakeEvent { event_active(wakeEvent, 0, 0) }
    }

    /// Loop thread only: flush `target` once after the current batch of work.
    func scheduleFlush(_ target: any LoopFlushable) {
        flushList.append(target)
    }

    fileprivate func drain() {
        drainingFlag.store(true, ordering: .releasing)
        // Bounded rounds so a handler running on this loop cannot starve socket I/O.
        for _ in 0..<16 {
            var tasks = spareTasks
            var closures = spareClosures
            var jobs = spareJobs
            let empty = pending.withLock { state -> Bool in
                swap(&tasks, &state.tasks)
                swap(&closures, &state.closures)
                swap(&jobs, &state.jobs)
                return tasks.isEmpty && closures.isEmpty && jobs.isEmpty
            }
            if empty { break }
            for closure in closures { closure() }
            if !jobs.isEmpty {
                let executor = taskExecutor.asUnownedTaskExecutor()
                for job in jobs { job.runSynchronously(on: executor) }
            }
            for task in tasks { task.runOnLoop() }
            tasks.removeAll(keepingCapacity: true)
            closures.removeAll(keepingCapacity: true)
            jobs.removeAll(keepingCapacity: true)
            spareTasks = tasks
            spareClosures = closures
            spareJobs = jobs
        }
        runFlushes()
        drainingFlag.store(false, ordering: .releasing)
        let wake = pending.withLock { state -> Bool in
            let more = !state.tasks.isEmpty || !state.closures.isEmpty || !state.jobs.isEmpty
            state.armed = more
            return more
        }
        if wake, let wakeEvent { event_active(wakeEvent, 0, 0) }
    }

    /// Loop thread only: `target`'s `writeAtTurnEnd` runs once the current turn's callbacks are done.
    func scheduleTurnEndWrite(_ target: any LoopTurnEndWriter) {
        turnEndWriters.append(target)
    }

    private func finishTurn() {
        runFlushes()
        while !turnEndWriters.isEmpty {
            let list = turnEndWriters
            turnEndWriters.removeAll(keepingCapacity: true)
            for target in list { target.writeAtTurnEnd() }
            runFlushes()
        }
    }

    /// Loop thread only: performs the flushes requested during this callback.
    func runFlushes() {
        while !flushList.isEmpty {
            let list = flushList
            flushList.removeAll(keepingCapacity: true)
            for target in list { target.flushFromLoop() }
        }
    }

    /// Stops the loop and joins its thread. Call from outside the loop, once.
    func stop() {
        guard !stopped.exchange(true, ordering: .acquiringAndReleasing) else { return }
        let base = UInt(bitPattern: Int(bitPattern: UnsafeMutableRawPointer(self.base)))
        execute {
            event_base_loopbreak(OpaquePointer(bitPattern: base))
        }
        if !inLoop { pthread_join(thread, nil) }
    }
}

private func eventLoopWakeCallback(_ fd: Int32, _ what: Int16, _ argument: UnsafeMutableRawPointer?) {
    guard let argument else { return }
    Unmanaged<EventLoop>.fromOpaque(argument).takeUnretainedValue().drain()
}

/// A Swift `TaskExecutor` that runs jobs on an event loop's thread, for handlers that should run
/// beside their connection instead of hopping to the concurrency pool (no thread wake-ups per
/// call; a handler that computes for long delays every connection on the loop).
final class EventLoopTaskExecutor: TaskExecutor, @unchecked Sendable {
    /// Unowned: the loop owns the executor and lives as long as any task could use it (loops are
    /// stopped only after the server's connections and handlers are gone).
    unowned let loop: EventLoop

    init(loop: EventLoop) {
        self.loop = loop
    }

    func enqueue(_ job: consuming ExecutorJob) {
        loop.enqueue(job: UnownedJob(job))
    }
}
