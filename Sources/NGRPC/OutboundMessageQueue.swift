import Synchronization

/// Framed messages of one stream waiting for the connection's loop to write them, plus how the
/// stream should end.
///
/// `send` appends and suspends while more than `limit` bytes are queued; the loop's data-read
/// callback copies bytes out (only as fast as the peer's HTTP/2 window allows) and resumes the
/// waiting senders once the queue is back under the limit. The first append after the loop last
/// looked schedules the owner (the stream) on the loop, once.
///
/// Thread-safety: every field is guarded by `state`'s mutex; continuations are resumed outside it.
final class OutboundMessageQueue: Sendable {
    enum End: Sendable {
        /// Server: end with trailers carrying this status and metadata.
        case status(RPCStatus, Metadata)
        /// Client: half-close (END_STREAM on the last DATA frame).
        case halfClose
    }

    /// What the loop found when it looked (see `beginLoopRun`).
    struct Snapshot {
        var hasData: Bool
        var end: End?
        var headersRequested: Metadata?
    }

    private struct State {
        var chunks: [[UInt8]] = []
        var head = 0
        var offset = 0
        var bufferedBytes = 0
        var headersRequested: Metadata?
        var end: End?
        var failure: RPCStatus?
        var waiters: [CheckedContinuation<Void, any Error>] = []
        var scheduled = false
        var owner: (any LoopTask)?
    }

    private let state: Mutex<State>
    let limit: Int
    let loop: EventLoop

    init(limit: Int, loop: EventLoop, owner: any LoopTask) {
        self.limit = limit
        self.loop = loop
        state = Mutex(State(owner: owner))
    }

    /// Called with the state locked: marks the owner scheduled and returns it when it was not yet.
    private static func claimSchedule(_ state: inout State) -> (any LoopTask)? {
        guard !state.scheduled, let owner = state.owner else { return nil }
        state.scheduled = true
        return owner
    }

    /// Queues an already framed message; suspends while the queue is over its limit.
    func send(_ framed: [UInt8]) async throws {
        let (owner, mustWait) = try state.withLock { state throws(RPCStatus) -> ((any LoopTask)?, Bool) in
            if let failure = state.failure { throw failure }
            if state.end != nil { throw RPCStatus(.internal, "message sent after the stream was closed") }
            state.chunks.append(framed)
            state.bufferedBytes += framed.count
            return (Self.claimSchedule(&state), state.bufferedBytes > limit)
        }
        if let owner { loop.enqueue(owner) }
        guard mustWait else { return }
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let outcome = state.withLock { state -> Result<Void, RPCStatus>? in
                if let failure = state.failure { return .failure(failure) }
                if state.bufferedBytes <= limit { return .success(()) }
                state.waiters.append(continuation)
                return nil
            }
            if let outcome { continuation.resume(with: outcome) }
        }
    }

    /// Loop side, synchronous handlers: queues a whole response and its end at once. Schedules
    /// nothing: the caller runs the stream's loop work right after. Ignored once ended or failed.
    func complete(_ framed: [UInt8]?, end: End) {
        state.withLock { state in
            guard state.end == nil, state.failure == nil else { return }
            if let framed {
                state.chunks.append(framed)
                state.bufferedBytes += framed.count
            }
            state.end = end
        }
    }

    /// Asks for response headers to go out now, with `metadata`.
    func requestHeaders(_ metadata: Metadata) throws {
        let owner = try state.withLock { state throws(RPCStatus) -> (any LoopTask)? in
            if let failure = state.failure { throw failure }
            if state.headersRequested == nil { state.headersRequested = metadata }
            return Self.claimSchedule(&state)
        }
        if let owner { loop.enqueue(owner) }
    }

    /// Sets how the stream ends once the queued bytes are out. Ignored when it already ended or failed.
    func finish(_ end: End) {
        let owner = state.withLock { state -> (any LoopTask)? in
            guard state.end == nil, state.failure == nil else { return nil }
            state.end = end
            return Self.claimSchedule(&state)
        }
        if let owner { loop.enqueue(owner) }
    }

    /// Fails senders with `status`, drops queued bytes and, when `end` is given, ends the stream
    /// that way instead (a deadline or a broken limit on the server). The caller guarantees the
    /// loop has not yet taken the previous end (the stream is not `finished`).
    func terminate(_ status: RPCStatus, end: End?) {
        let (owner, waiters) = state.withLock { state -> ((any LoopTask)?, [CheckedContinuation<Void, any Error>]) in
            if state.failure == nil { state.failure = status }
            state.chunks = []
            state.head = 0
            state.offset = 0
            state.bufferedBytes = 0
            let waiters = state.waiters
            state.waiters = []
            var owner: (any LoopTask)?
            if let end {
                // Replaces an end the handler may have set in a race with the termination: the
                // queued messages it belonged to are gone, so only the new end is truthful.
                state.end = end
                owner = Self.claimSchedule(&state)
            }
            return (owner, waiters)
        }
        for waiter in waiters { waiter.resume(throwing: status) }
        if let owner { loop.enqueue(owner) }
    }

    /// Loop side, stream gone: drops the owner reference (breaking the cycle) and fails senders.
    func detach(_ status: RPCStatus) {
        terminate(status, end: nil)
        state.withLock { $0.owner = nil }
    }

    /// Loop side: clears the scheduled flag and reports what is pending.
    func beginLoopRun() -> Snapshot {
        state.withLock { state in
            state.scheduled = false
            let headers = state.headersRequested
            state.headersRequested = nil
            return Snapshot(hasData: state.bufferedBytes > 0, end: state.end, headersRequested: headers)
        }
    }

    /// Loop side (nghttp2 data-read callback): copies up to `buffer.count` queued bytes. Returns the
    /// count and, when the queue is now empty and the stream should end, how.
    func read(into buffer: UnsafeMutableRawBufferPointer) -> (count: Int, end: End?) {
        let (count, end, waiters) = state.withLock { state -> (Int, End?, [CheckedContinuation<Void, any Error>]) in
            var written = 0
            let capacity = buffer.count
            while written < capacity, state.head < state.chunks.count {
                let copied = state.chunks[state.head].withUnsafeBytes { chunk -> Int in
                    let length = min(chunk.count - state.offset, capacity - written)
                    if length > 0 {
                        (buffer.baseAddress! + written).copyMemory(from: chunk.baseAddress! + state.offset, byteCount: length)
                    }
                    return length
                }
                written += copied
                state.offset += copied
                if state.offset == state.chunks[state.head].count {
                    state.chunks[state.head] = []
                    state.head += 1
                    state.offset = 0
                }
            }
            if state.head == state.chunks.count {
                state.chunks.removeAll(keepingCapacity: true)
                state.head = 0
            } else if state.head >= 64 && state.head * 2 >= state.chunks.count {
                state.chunks.removeFirst(state.head)
                state.head = 0
            }
            state.bufferedBytes -= written
            var waiters: [CheckedContinuation<Void, any Error>] = []
            if !state.waiters.isEmpty && state.bufferedBytes <= limit {
                waiters = state.waiters
                state.waiters = []
            }
            let end = state.bufferedBytes == 0 ? state.end : nil
            return (written, end, waiters)
        }
        for waiter in waiters { waiter.resume() }
        return (count, end)
    }
}
