internal import CLibevent

/// A one-shot (re-armable) timer on an event loop.
///
/// Threading: create, arm, cancel and release it on its loop's thread only. Ownership: the timer
/// owns its libevent `event` and frees it in `deinit` (which also disarms it); the callback gets
/// an unretained pointer, so the owner must keep the timer alive while it is armed — dropping the
/// timer is how it is cancelled for good.
final class LoopTimer {
    private var event: OpaquePointer?
    fileprivate let action: () -> Void
    fileprivate unowned let loop: EventLoop

    init(loop: EventLoop, action: @escaping () -> Void) {
        self.action = action
        self.loop = loop
        event = event_new(loop.base, -1, 0, loopTimerCallback, Unmanaged.passUnretained(self).toOpaque())
    }

    deinit {
        if let event { event_free(event) }
    }

    /// Arms (or re-arms) the timer to fire once after `delay`.
    func schedule(after delay: Duration) {
        guard let event else { return }
        let (seconds, attoseconds) = delay.components
        var interval = timeval(
            tv_sec: max(0, Int(seconds)),
            tv_usec: seconds < 0 ? 0 : Int(attoseconds / 1_000_000_000_000))
        event_add(event, &interval)
    }

    func cancel() {
        if let event { event_del(event) }
    }
}

private func loopTimerCallback(_ fd: Int32, _ what: Int16, _ argument: UnsafeMutableRawPointer?) {
    guard let argument else { return }
    let timer = Unmanaged<LoopTimer>.fromOpaque(argument).takeUnretainedValue()
    let loop = timer.loop
    timer.action()
    // Flushes the action asked for (a GOAWAY, a PING) go out now, not at the next wake-up.
    loop.runFlushes()
}
