import Foundation
import NGRPC
import OrchestratorAPI
import Synchronization

/// When each assignment arrived, by task id (wall clock, ms since the epoch, sub-millisecond), how
/// many completions the server accepted, and the first thing that makes the run's count
/// unreachable (a completion refused for good, a stream that ended). Shared by every executor of a run.
final class Recorder: Sendable {
    private struct State {
        var received: [String: Double] = [:]
        var accepted = 0
        var refused = 0
        var failure: String?
    }

    /// Guards every field.
    private let state = Mutex(State())

    func received(_ taskID: String, at millis: Double) { state.withLock { $0.received[taskID] = millis } }
    func acked(_ accepted: Bool) { state.withLock { if accepted { $0.accepted += 1 } else { $0.refused += 1 } } }
    var accepted: Int { state.withLock { $0.accepted } }
    var refused: Int { state.withLock { $0.refused } }
    var receivedTimes: [String: Double] { state.withLock { $0.received } }
    /// Records why the run cannot finish; the first reason wins.
    func fail(_ reason: String) { state.withLock { if $0.failure == nil { $0.failure = reason } } }
    var failure: String? { state.withLock { $0.failure } }
    func reset() { state.withLock { $0 = State() } }
}

func wallMillis() -> Double { Date().timeIntervalSince1970 * 1000 }

/// One executor holding one Lease stream on a connection of its own: it completes every
/// assignment the moment it arrives (the work itself takes no time), so what is measured is the
/// orchestrator's dispatch path, durably: each completion is acknowledged only once stored.
final class BenchExecutor: Sendable {
    let id: String
    private let channel: GRPCChannel
    private let call: RPCBidirectionalCall<Orchestrator_V1_LeaseRequest, Orchestrator_V1_LeaseResponse>
    private let sender: StreamSender
    private let loop = Mutex<Task<Void, any Error>?>(nil)
    /// Set by `close`: the stream ending after it is expected.
    private let closing = Atomic<Bool>(false)

    /// Connects and says hello; returns once the server's welcome arrived.
    static func connect(
        id: String, host: String, port: Int, capabilities: [String], maxInFlight: Int, recorder: Recorder
    ) async throws -> BenchExecutor {
        let channel = try GRPCChannel(host: host, port: port)
        let call = try await Orchestrator_V1_ExecutorsClient(channel: channel).lease(options: CallOptions())
        let executor = BenchExecutor(id: id, channel: channel, call: call)
        var hello = Orchestrator_V1_ExecutorHello()
        hello.executorID = id
        hello.capabilities = capabilities
        hello.maxInFlight = Int32(maxInFlight)
        hello.version = "DispatchBench"
        var first = Orchestrator_V1_LeaseRequest()
        first.kind = .hello(hello)
        try await executor.sender.send(first)
        let (welcomed, welcome) = AsyncStream<Void>.makeStream()
        executor.loop.withLock {
            $0 = Task {
                // A stream that ends mid-run loses its leases' completions: the run cannot reach its
                // count, so it fails now rather than at the deadline.
                do {
                    try await executor.serve(recorder: recorder, welcome: welcome)
                    if !executor.closing.load(ordering: .relaxed) { recorder.fail("executor \(id): the server ended the Lease stream") }
                } catch {
                    if !executor.closing.load(ordering: .relaxed) { recorder.fail("executor \(id): Lease stream failed: \(error)") }
                    welcome.finish()
                    throw error
                }
            }
        }
        for await _ in welcomed { break }
        return executor
    }

    private init(id: String, channel: GRPCChannel, call: RPCBidirectionalCall<Orchestrator_V1_LeaseRequest, Orchestrator_V1_LeaseResponse>) {
        self.id = id
        self.channel = channel
        self.call = call
        sender = StreamSender(call: call)
    }

    private func serve(recorder: Recorder, welcome: AsyncStream<Void>.Continuation) async throws {
        var heartbeat: Task<Void, any Error>?
        defer { heartbeat?.cancel() }
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
                    }
                }
                welcome.yield()
                welcome.finish()
            case .assignment(let assignment):
                let lease = assignment.lease ?? Orchestrator_V1_LeaseToken()
                recorder.received(lease.taskID, at: wallMillis())
                var completion = Orchestrator_V1_TaskCompletion()
                completion.lease = lease
                completion.result = [1]
                var report = Orchestrator_V1_LeaseRequest()
                report.kind = .completion(completion)
                try await sender.send(report)
            case .ack(let ack):
                recorder.acked(ack.accepted)
                if ack.accepted { break }
                let taskID = ack.lease?.taskID ?? "?"
                if ack.code == 14 {
                    // UNAVAILABLE: not stored, try again (as a real executor would; the lease still holds).
                    var completion = Orchestrator_V1_TaskCompletion()
                    completion.lease = ack.lease ?? Orchestrator_V1_LeaseToken()
                    completion.result = [1]
                    var report = Orchestrator_V1_LeaseRequest()
                    report.kind = .completion(completion)
                    try await Task.sleep(for: .milliseconds(50))
                    try await sender.send(report)
                } else {
                    recorder.fail("executor \(id): completion of task \(taskID) refused with code \(ack.code): \(ack.message)")
                }
            default:
                break
            }
        }
    }

    /// Half-closes the stream (the server gives back whatever is still leased) and disconnects.
    func close() async {
        closing.store(true, ordering: .relaxed)
        try? await call.closeSend()
        let task = loop.withLock { $0 }
        _ = try? await task?.value
        await channel.close()
    }
}

/// Serialises sends on one stream from several tasks.
actor StreamSender {
    let call: RPCBidirectionalCall<Orchestrator_V1_LeaseRequest, Orchestrator_V1_LeaseResponse>
    init(call: RPCBidirectionalCall<Orchestrator_V1_LeaseRequest, Orchestrator_V1_LeaseResponse>) { self.call = call }
    func send(_ message: Orchestrator_V1_LeaseRequest) async throws { try await call.send(message) }
}
