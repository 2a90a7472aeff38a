import NGRPC
import Synchronization

/// Request side of a call in memory: messages pushed by the test, nil once finished.
final class InMemorySource: RawMessageSource {
    private struct State {
        var queue: [[UInt8]] = []
        var finished = false
        var waiter: CheckedContinuation<[UInt8]?, Never>?
    }
    private let state = Mutex(State())

    /// - Parameters:
    ///   - messages: queued before the handler starts.
    ///   - finished: whether the client has already half-closed.
    init(_ messages: [[UInt8]] = [], finished: Bool = true) {
        state.withLock {
            $0.queue = messages
            $0.finished = finished
        }
    }

    func push(_ message: [UInt8]) {
        let waiter = state.withLock { state -> CheckedContinuation<[UInt8]?, Never>? in
            guard let waiter = state.waiter else {
                state.queue.append(message)
                return nil
            }
            state.waiter = nil
            return waiter
        }
        waiter?.resume(returning: message)
    }

    func finish() {
        let waiter = state.withLock { state -> CheckedContinuation<[UInt8]?, Never>? in
            state.finished = true
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume(returning: nil)
    }

    func next() async throws -> [UInt8]? {
        await withCheckedContinuation { continuation in
            let ready = state.withLock { state -> [UInt8]?? in
                if !state.queue.isEmpty { return .some(state.queue.removeFirst()) }
                if state.finished { return .some(nil) }
                state.waiter = continuation
                return .none
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }
}

/// Response side of a call in memory: records what the handler sends and lets a test wait for it.
final class InMemorySink: RawMessageSink {
    private struct State {
        var messages: [[UInt8]] = []
        var headers: [Metadata] = []
        var waiters: [(count: Int, continuation: CheckedContinuation<Void, Never>)] = []
    }
    private let state = Mutex(State())

    var messages: [[UInt8]] { state.withLock { $0.messages } }
    var headers: [Metadata] { state.withLock { $0.headers } }

    func sendHeaders(_ metadata: Metadata) async throws {
        state.withLock { $0.headers.append(metadata) }
    }

    func send(_ message: [UInt8]) async throws {
        let ready = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.messages.append(message)
            let count = state.messages.count
            let ready = state.waiters.filter { $0.count <= count }.map(\.continuation)
            state.waiters.removeAll { $0.count <= count }
            return ready
        }
        for continuation in ready { continuation.resume() }
    }

    /// Suspends until at least `count` messages were sent.
    func waitForMessages(_ count: Int) async {
        await withCheckedContinuation { continuation in
            let done = state.withLock { state -> Bool in
                if state.messages.count >= count { return true }
                state.waiters.append((count, continuation))
                return false
            }
            if done { continuation.resume() }
        }
    }

    func decoded<Message: GRPCMessage>(as type: Message.Type) throws -> [Message] {
        try messages.map { try Message(serializedBytes: $0) }
    }
}

func makeContext(_ method: MethodDescriptor) -> ServerContext {
    ServerContext(method: method, requestMetadata: Metadata(), deadline: nil, trace: .start(), peer: "in-process")
}

/// Runs the router's handler for `method` to completion with the given requests (half-closed).
func invoke(
    _ router: RPCRouter, _ method: MethodDescriptor, requests: [any GRPCMessage]
) async throws -> InMemorySink {
    guard let route = router.route(forPath: method.path) else {
        throw RPCStatus(.unimplemented, "no route for \(method.path)")
    }
    let source = InMemorySource(try requests.map { try $0.serializedBytes() })
    let sink = InMemorySink()
    try await route.handler(source, sink, makeContext(method))
    return sink
}
