import Synchronization

/// A value that is set once and awaited by any number of tasks.
/// Thread-safe: guarded by `state`'s mutex; continuations are resumed outside it.
final class Promise<Value: Sendable>: Sendable {
    private struct State {
        var result: Result<Value, RPCStatus>?
        var waiters: [CheckedContinuation<Value, any Error>] = []
    }
    private let state = Mutex(State())

    init() {}

    /// Sets the result; later calls are ignored. Returns whether this call set it.
    @discardableResult
    func complete(_ result: Result<Value, RPCStatus>) -> Bool {
        let waiters = state.withLock { state -> [CheckedContinuation<Value, any Error>]? in
            guard state.result == nil else { return nil }
            state.result = result
            defer { state.waiters = [] }
            return state.waiters
        }
        guard let waiters else { return false }
        for waiter in waiters { waiter.resume(with: result.mapError { $0 as any Error }) }
        return true
    }

    var isCompleted: Bool { state.withLock { $0.result != nil } }

    func get() async throws -> Value {
        try await withCheckedThrowingContinuation { continuation in
            let result = state.withLock { state -> Result<Value, RPCStatus>? in
                if let result = state.result { return result }
                state.waiters.append(continuation)
                return nil
            }
            if let result { continuation.resume(with: result.mapError { $0 as any Error }) }
        }
    }
}
