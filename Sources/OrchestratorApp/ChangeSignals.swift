import Synchronization

/// Fans cross-process change signals (a `ChangeFeed`) and local ones out to any number of
/// waiting dispatchers and watchers without lost wake-ups: a waiter remembers the generation it
/// saw *before* reading the database and sleeps only while the generation is unchanged.
///
/// Thread-safety: all state is behind `state`'s mutex; continuations are resumed outside it.
public final class ChangeSignals: Sendable {
    public enum Kind: Sendable, Hashable { case tasksReady, events }

    private struct Waiter {
        let kind: Kind
        let nudgeKey: String?
        let continuation: CheckedContinuation<Void, Never>
    }

    private struct State {
        var generations: [Kind: UInt64] = [.tasksReady: 0, .events: 0]
        var waiters: [UInt64: Waiter] = [:]
        var nextWaiterID: UInt64 = 0
        /// The waiter asleep under each nudge key, and the keys nudged while none was.
        var waiterByNudgeKey: [String: UInt64] = [:]
        var nudged: Set<String> = []
    }

    private let state = Mutex(State())
    private let draining = Atomic<Bool>(false)

    public init() {}

    /// The server began its graceful shutdown: every waiter wakes, and long waits (watch streams,
    /// long polls, SubmitQuery's `wait`) end at once instead of holding the grace period.
    public func beginShutdown() {
        draining.store(true, ordering: .releasing)
        signal(.tasksReady)
        signal(.events)
    }

    public var isShuttingDown: Bool { draining.load(ordering: .acquiring) }

    /// Returns once the graceful shutdown has begun, or when the calling task is cancelled.
    public func shutdownBegan() async {
        while !Task.isCancelled {
            // The generation first: `beginShutdown` sets the flag before it signals.
            let seen = generation(.events)
            if isShuttingDown { return }
            await wait(.events, after: seen, timeout: .seconds(3600))
        }
    }

    /// Consumes `feed` until the returned task is cancelled.
    public func follow(_ feed: any ChangeFeed) -> Task<Void, Never> {
        let stream = feed.subscribe()
        return Task { [self] in
            for await change in stream {
                switch change {
                case .tasksReady: self.signal(.tasksReady)
                case .eventsAppended: self.signal(.events)
                }
            }
        }
    }

    /// The current generation of `kind`; read it before querying the database.
    public func generation(_ kind: Kind) -> UInt64 {
        state.withLock { $0.generations[kind] ?? 0 }
    }

    /// Wakes every waiter of `kind`.
    public func signal(_ kind: Kind) {
        let woken = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.generations[kind, default: 0] &+= 1
            var woken: [CheckedContinuation<Void, Never>] = []
            for (id, waiter) in state.waiters where waiter.kind == kind {
                woken.append(waiter.continuation)
                state.waiters[id] = nil
                if let key = waiter.nudgeKey { state.waiterByNudgeKey[key] = nil }
            }
            return woken
        }
        for continuation in woken { continuation.resume() }
    }

    /// Wakes the one waiter that waits under `key` (`wait(nudgeKey:)`), or, when it is not
    /// asleep, makes its next wait return at once: a lease session whose lease was revoked has a
    /// free slot to fill now, and nothing in the database changed to say so.
    public func nudge(_ key: String) {
        let woken = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard let id = state.waiterByNudgeKey.removeValue(forKey: key), let waiter = state.waiters.removeValue(forKey: id) else {
                state.nudged.insert(key)
                return nil
            }
            return waiter.continuation
        }
        woken?.resume()
    }

    /// Drops a nudge nobody waited for (its session ended).
    public func forgetNudges(_ key: String) {
        state.withLock { _ = $0.nudged.remove(key) }
    }

    /// Returns when `kind`'s generation moves past `seen`, after `timeout`, on cancellation, or
    /// when `nudgeKey` is nudged (before or during the wait), whichever comes first.
    public func wait(_ kind: Kind, after seen: UInt64, timeout: Duration, nudgeKey: String? = nil) async {
        let id = state.withLock { state -> UInt64 in
            state.nextWaiterID &+= 1
            return state.nextWaiterID
        }
        let timer = Task { [self] in
            try? await Task.sleep(for: timeout)
            resume(id)
        }
        defer { timer.cancel() }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { state -> Bool in
                    if let key = nudgeKey, state.nudged.remove(key) != nil { return true }
                    if (state.generations[kind] ?? 0) != seen || Task.isCancelled { return true }
                    state.waiters[id] = Waiter(kind: kind, nudgeKey: nudgeKey, continuation: continuation)
                    if let key = nudgeKey { state.waiterByNudgeKey[key] = id }
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            resume(id)
        }
    }

    private func resume(_ id: UInt64) {
        let waiter = state.withLock { state -> Waiter? in
            guard let waiter = state.waiters.removeValue(forKey: id) else { return nil }
            if let key = waiter.nudgeKey, state.waiterByNudgeKey[key] == id { state.waiterByNudgeKey[key] = nil }
            return waiter
        }
        waiter?.continuation.resume()
    }

    /// Waiters currently asleep (for metrics and tests).
    public var waiterCount: Int { state.withLock { $0.waiters.count } }
}
