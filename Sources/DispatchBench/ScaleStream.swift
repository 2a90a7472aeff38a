import NGRPC
import OrchestratorAPI
import Synchronization

/// Counters shared by every stream of a scale run.
final class ScaleCounters: Sendable {
    let heartbeatsSent = Atomic<Int>(0)
    let heartbeatAcks = Atomic<Int>(0)
    /// Assignments would mean a task matched the capability nobody requires: the run is void.
    let assignments = Atomic<Int>(0)
    /// Streams that ended (or failed) before the bench closed them.
    let endedEarly = Atomic<Int>(0)
    let closing = Atomic<Bool>(false)
}

/// One idle executor on a Lease stream of a shared connection: hello with a capability no task
/// requires (so nothing is ever leased), then a heartbeat every interval the server announced,
/// until `close`. What it costs the server is the price of a connected, heartbeating executor.
final class ScaleStream: Sendable {
    static let capability = "scale-bench-nothing-requires-this"

    private let call: RPCBidirectionalCall<Orchestrator_V1_LeaseRequest, Orchestrator_V1_LeaseResponse>
    private let sender: StreamSender
    private let loop = Mutex<Task<Void, Never>?>(nil)

    /// Opens the stream on `channel` and says hello; returns once the server's welcome arrived.
    static func open(id: String, channel: GRPCChannel, counters: ScaleCounters) async throws -> ScaleStream {
        let call = try await Orchestrator_V1_ExecutorsClient(channel: channel).lease(options: CallOptions())
        let stream = ScaleStream(call: call)
        var hello = Orchestrator_V1_ExecutorHello()
        hello.executorID = id
        hello.capabilities = [capability]
        hello.maxInFlight = 1
        hello.version = "DispatchBench-scale"
        var first = Orchestrator_V1_LeaseRequest()
        first.kind = .hello(hello)
        try await stream.sender.send(first)
        let (welcomed, welcome) = AsyncStream<Bool>.makeStream()
        stream.loop.withLock { $0 = Task { await stream.serve(counters: counters, welcome: welcome) } }
        for await ok in welcomed {
            guard ok else { break }
            return stream
        }
        throw BenchError("stream \(id) ended before the server's welcome")
    }

    private init(call: RPCBidirectionalCall<Orchestrator_V1_LeaseRequest, Orchestrator_V1_LeaseResponse>) {
        self.call = call
        sender = StreamSender(call: call)
    }

    private func serve(counters: ScaleCounters, welcome: AsyncStream<Bool>.Continuation) async {
        var heartbeat: Task<Void, any Error>?
        defer {
            heartbeat?.cancel()
            welcome.yield(false)
            welcome.finish()
            if !counters.closing.load(ordering: .relaxed) { counters.endedEarly.add(1, ordering: .relaxed) }
        }
        do {
            for try await response in call.responses {
                switch response.kind {
                case .welcome(let message):
                    let interval = Duration.milliseconds(max(message.heartbeatIntervalMs, 100))
                    heartbeat = Task { [sender] in
                        while !Task.isCancelled {
                            try await Task.sleep(for: interval)
                            var beat = Orchestrator_V1_LeaseRequest()
                            beat.kind = .heartbeat(Orchestrator_V1_HeartbeatSignal())
                            try await sender.send(beat)
                            counters.heartbeatsSent.add(1, ordering: .relaxed)
                        }
                    }
                    welcome.yield(true)
                case .heartbeatAck:
                    counters.heartbeatAcks.add(1, ordering: .relaxed)
                case .assignment:
                    counters.assignments.add(1, ordering: .relaxed)
                default:
                    break
                }
            }
        } catch {
            // Counted as ended early unless the bench was closing.
        }
    }

    /// Half-closes the stream and waits for the server to end it.
    func close() async {
        try? await call.closeSend()
        let task = loop.withLock { $0 }
        await task?.value
    }
}
