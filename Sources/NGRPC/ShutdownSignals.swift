internal import CLibevent
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// SIGTERM and SIGINT, process-wide: the first starts a graceful shutdown, the second cuts the
/// grace period short, the third exits at once (`GRPCServer.installSignalHandlers`).
///
/// While the server runs, libevent's signal events on its first loop take them. They go with the
/// loops when the server stops, yet the process is not done: orchestratord then stops its
/// embedded PostgreSQL and flushes traces. A signal there found the default disposition and
/// killed it half-way — `tools/run`'s Ctrl-C (SIGINT to the group, then the script's own
/// SIGTERM) left the embedded PostgreSQL running every time. So a plain handler sits under
/// libevent's (libevent restores it when its events are freed) and goes on counting: the
/// process finishes its shutdown unless this is the third signal.
enum ShutdownSignals {
    /// Signals received so far; lock-free, so the plain handler may touch it.
    private static let received = Atomic<Int>(0)

    /// Counts one signal and returns how many there have been.
    static func count() -> Int {
        received.wrappingAdd(1, ordering: .relaxed).newValue
    }

    static func installAfterStopHandler() {
        _ = received.load(ordering: .relaxed)  // initialised before any handler can run
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { signal in
            // Only async-signal-safe work here: an atomic add and `_exit`.
            if ShutdownSignals.count() >= 3 { _exit(128 + signal) }
        }
        sigemptyset(&action.sa_mask)
        sigaction(SIGTERM, &action, nil)
        sigaction(SIGINT, &action, nil)
    }
}

/// A libevent signal event. Loop thread only; owns its `event`, freed by `close()` or `deinit`.
final class SignalEvent: @unchecked Sendable {
    private var event: OpaquePointer?
    fileprivate let action: () -> Void

    init(loop: EventLoop, signal: Int32, action: @escaping () -> Void) {
        self.action = action
        event = event_new(
            loop.base, signal, Int16(EV_SIGNAL | EV_PERSIST), signalEventCallback, Unmanaged.passUnretained(self).toOpaque())
        if let event { event_add(event, nil) }
    }

    func close() {
        if let event { event_free(event) }
        event = nil
    }

    deinit { close() }
}

private func signalEventCallback(_ fd: Int32, _ what: Int16, _ argument: UnsafeMutableRawPointer?) {
    guard let argument else { return }
    Unmanaged<SignalEvent>.fromOpaque(argument).takeUnretainedValue().action()
}
