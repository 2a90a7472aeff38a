import Synchronization

/// Messages received on one stream, waiting for the handler (server) or caller (client).
///
/// Bounded through HTTP/2 flow control rather than by refusing messages: while `bufferedBytes`
/// is above `limit`, the loop stops returning the stream's window (`heldWindow` in the stream), so
/// the peer stops sending; when the consumer drains the queue back under the limit, the owner
/// (the stream) is scheduled on the loop to release the held window.
///
/// Thread-safety: every field is guarded by `state`'s mutex; continuations are resumed outside it.
/// The strong reference to the owner is dropped by `fail` (which every stream end calls), so the
/// stream ↔ queue cycle does not outlive the stream. (No weak references: they give the stream a
/// side table and make every retain/release on the hot path take the slow path.)
final class InboundMessageQueue: Sendable {
    private struct State {
        var messages: [[UInt8]] = []
        var head = 0
        var bufferedBytes = 0
        var finished = false
        /// Thrown by `next()` after the buffered messages (a call that ended with a non-OK status).
        var endFailure: RPCStatus?
        var failure: RPCStatus?
        var waiter: CheckedContinuation<[UInt8]?, any Error>?
        var drainWanted = false
        var owner: (any LoopTask)?
    }

    private let state: Mutex<State>
    let limit: Int
    /// What a message costs beyond its bytes (its allocation and queue slot): empty messages
    /// counted nothing, so a handler that stopped reading queued them without end.
    static let messageOverhead = 64
    let loop: EventLoop

    init(limit: Int, loop: EventLoop, owner: any LoopTask) {
        self.limit = limit
        self.loop = loop
        state = Mutex(State(owner: owner))
    }

    private func notifyOwner(_ owner: (any LoopTask)?) {
        if let owner { loop.enqueue(owner) }
    }

    /// Loop side: delivers a message. Returns whether the queue is still within its limit (the
    /// caller then returns the flow-control window at once).
    @discardableResult
    func push(_ message: [UInt8]) -> Bool {
        let (waiter, withinLimit) = state.withLock { state -> (CheckedContinuation<[UInt8]?, any Error>?, Bool) in
            guard !state.finished, state.failure == nil else { return (nil, true) }
            if let waiter = state.waiter {
                state.waiter = nil
                return (waiter, true)
            }
            state.messages.append(message)
            state.bufferedBytes += message.count + Self.messageOverhead
            return (nil, state.bufferedBytes <= limit)
        }
        waiter?.resume(returning: message)
        return withinLimit
    }

    /// Loop side: the window of some bytes is held back; call `onDrained` once the consumer has
    /// brought the queue back under the limit.
    func requestDrainNotification() {
        let owner = state.withLock { state -> (any LoopTask)? in
            if state.drainWanted { return nil }
            if state.bufferedBytes <= limit || state.failure != nil { return state.owner }
            state.drainWanted = true
            return nil
        }
        notifyOwner(owner)
    }

    /// Drops the reference to the owner (breaking the owner ↔ queue cycle) while keeping buffered
    /// messages readable: for a client call that completed normally.
    func detachOwner() {
        state.withLock { $0.owner = nil }
    }

    var isWithinLimit: Bool { state.withLock { $0.bufferedBytes <= limit } }

    /// Within `limit + extra`.
    func isWithinLimit(plus extra: Int) -> Bool { state.withLock { $0.bufferedBytes <= limit + extra } }

    /// The peer half-closed: `next()` returns nil after the buffered messages, or throws
    /// `failure` after them when given.
    func finish(failure: RPCStatus? = nil) {
        let waiter = state.withLock { state -> CheckedContinuation<[UInt8]?, any Error>? in
            guard !state.finished, state.failure == nil else { return nil }
            state.finished = true
            state.endFailure = failure
            defer { state.waiter = nil }
            return state.waiter
        }
        if let failure {
            waiter?.resume(throwing: failure)
        } else {
            waiter?.resume(returning: nil)
        }
    }

    /// The stream closed under the consumer (the peer reset it, or the connection went): the
    /// messages that arrived before are still delivered, then `next()` throws `status`. What the
    /// peer sent before hanging up was received: a lease stream's last completion, sent right
    /// before the executor exits, must be applied, not dropped with the buffer.
    func close(_ status: RPCStatus) {
        let waiter = state.withLock { state -> CheckedContinuation<[UInt8]?, any Error>? in
            state.owner = nil
            state.drainWanted = false
            guard !state.finished, state.failure == nil else { return nil }
            state.finished = true
            state.endFailure = status
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume(throwing: status)
    }

    /// Ends the queue with an error: buffered messages are dropped and `next()` throws `status`.
    func fail(_ status: RPCStatus) {
        let waiter = state.withLock { state -> CheckedContinuation<[UInt8]?, any Error>? in
            guard state.failure == nil else { return nil }
            state.failure = status
            state.messages = []
            state.head = 0
            state.bufferedBytes = 0
            state.owner = nil
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume(throwing: status)
    }

    private enum Poll {
        case message([UInt8], notify: (any LoopTask)?)
        case end
        case failure(RPCStatus)
        case wait
    }

    private func poll(storing waiter: CheckedContinuation<[UInt8]?, any Error>?) -> Poll {
        state.withLock { state -> Poll in
            if state.head < state.messages.count {
                let message = state.messages[state.head]
                state.messages[state.head] = []
                state.head += 1
                if state.head == state.messages.count {
                    state.messages.removeAll(keepingCapacity: true)
                    state.head = 0
                } else if state.head >= 64 && state.head * 2 >= state.messages.count {
                    state.messages.removeFirst(state.head)
                    state.head = 0
                }
                state.bufferedBytes -= message.count + Self.messageOverhead
                var notify: (any LoopTask)?
                if state.drainWanted && state.bufferedBytes <= limit {
                    state.drainWanted = false
                    notify = state.owner
                }
                return .message(message, notify: notify)
            }
            if let failure = state.failure { return .failure(failure) }
            if state.finished { return state.endFailure.map(Poll.failure) ?? .end }
            if let waiter {
                // One reader at a time: a second concurrent `next()` is a caller bug, reported to
                // that caller rather than crashing the server.
                if state.waiter != nil {
                    return .failure(RPCStatus(.internal, "concurrent next() calls on one message stream"))
                }
                state.waiter = waiter
            }
            return .wait
        }
    }

    /// The next message, nil at the end, or the failure.
    func next() async throws -> [UInt8]? {
        switch poll(storing: nil) {
        case .message(let message, let notify):
            notifyOwner(notify)
            return message
        case .end: return nil
        case .failure(let status): throw status
        case .wait: break
        }
        let result: [UInt8]? = try await withCheckedThrowingContinuation { continuation in
            switch poll(storing: continuation) {
            case .message(let message, let notify):
                notifyOwner(notify)
                continuation.resume(returning: message)
            case .end: continuation.resume(returning: nil)
            case .failure(let status): continuation.resume(throwing: status)
            case .wait: break
            }
        }
        return result
    }
}
