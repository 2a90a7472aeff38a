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
        let continuation: CheckedContinuation<Void, Never>
    }

    private struct State {
        var generations: [Kind: UInt64] = [.tasksReady: 0, .events: 0]
        var waiters: [UInt64: Waiter] = [:]
        var nextWaiterID: UInt64 = 0
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
            }
            return woken
        }
        for continuation in woken { continuation.resume() }
    }

    /// Returns when `kind`'s generation moves past `seen`, after `timeout`, or on cancellation,
    /// whichever comes first.
    public func wait(_ kind: Kind, after seen: UInt64, timeout: Duration) async {
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
                    if (state.generations[kind] ?? 0) != seen || Task.isCancelled { return true }
                    state.waiters[id] = Waiter(kind: kind, continuation: continuation)
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            resume(id)
        }
    }

    private func resume(_ id: UInt64) {
        let waiter = state.withLock { $0.waiters.removeValue(forKey: id) }
        waiter?.continuation.resume()
    }

    /// Waiters currently asleep (for metrics and tests).
    public var waiterCount: Int { state.withLock { $0.waiters.count } }
}
