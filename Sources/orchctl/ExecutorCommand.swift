import ArgumentParser
import Foundation
import NGRPC
import OrchestratorAPI
import OrchestratorGRPC
import OrchestratorTracing

/// A sample executor on the Lease stream, with configurable behaviour for demos and manual
/// testing: how long tasks take, how often they fail, and whether the process dies mid-task.
struct ExecutorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "executor", abstract: "Run a sample executor that leases tasks and reports on them.")

    @OptionGroup var connection: ConnectionOptions

    @Option(name: .long, help: "Executor id (default: orchctl-<pid>).") var id: String?
    @Option(name: .customLong("capabilities"), parsing: .upToNextOption, help: "Capabilities it advertises, space- or comma-separated.")
    var capabilityArguments: [String] = []
    /// `--capabilities gpu,echo` advertised one capability named "gpu,echo", and gpu tasks never
    /// came (found by black-box testing; `token --tenants` takes commas): both forms are lists,
    /// and a quoted argument with spaces ("gpu echo") is split as the help says.
    var capabilities: [String] {
        capabilityArguments.flatMap { $0.split(whereSeparator: { $0 == "," || $0.isWhitespace }).map(String.init) }
    }
    // `.unconditional`: a negative number is the value (to be refused by `validate`), not "Missing value".
    @Option(name: .long, parsing: .unconditional, help: "Tasks run at once.") var maxInFlight: Int32 = 1
    @Option(name: .long, parsing: .unconditional, help: "How long each task takes, in milliseconds.") var sleepMs: Int = 200
    @Option(name: .long, parsing: .unconditional, help: "Probability in [0, 1] that a task fails.") var failProbability: Double = 0
    @Flag(name: .long, help: "Report failures as not retryable.") var permanentFailures = false
    @Option(name: .long, parsing: .unconditional, help: "Kill this process (no goodbye) in the middle of the Nth task.") var dieAfter: Int?
    @Option(name: .long, parsing: .unconditional, help: "Take this many tasks, then no more (drain): finish them and exit.") var tasks: Int?
    @Flag(name: .long, help: "Print nothing but errors.") var quiet = false
    @Option(name: .customLong("otlp-endpoint"), help: "OTLP/HTTP collector base URL: each task's work becomes a span continuing the assignment's traceparent (env OTEL_EXPORTER_OTLP_ENDPOINT).")
    var otlpEndpointOption: String?
    var otlpEndpoint: String? { otlpEndpointOption ?? ProcessEnvironment.value("OTEL_EXPORTER_OTLP_ENDPOINT") }

    /// Values the executor would otherwise run with, doing something other than asked (found by
    /// black-box testing: `--fail-probability 1.5`, `--tasks 0` and no capabilities all ran).
    func validate() throws {
        guard !capabilities.isEmpty else { throw ValidationError("--capabilities needs at least one capability: no task could be offered") }
        guard maxInFlight >= 1 else { throw ValidationError("--max-in-flight must be 1 or more, not \(maxInFlight)") }
        guard sleepMs >= 0 else { throw ValidationError("--sleep-ms must be 0 or more, not \(sleepMs)") }
        guard (0...1).contains(failProbability) else {
            throw ValidationError("--fail-probability must be between 0 and 1, not \(failProbability)")
        }
        if let dieAfter, dieAfter < 1 { throw ValidationError("--die-after must be 1 or more (the Nth task), not \(dieAfter)") }
        if let tasks, tasks < 1 { throw ValidationError("--tasks must be 1 or more, not \(tasks)") }
    }

    func run() async throws {
        let executorID = id ?? "orchctl-\(ProcessInfo.processInfo.processIdentifier)"
        var processor: BatchSpanProcessor?
        if let otlpEndpoint, !otlpEndpoint.isEmpty {
            do {
                processor = BatchSpanProcessor(exporter: try OTLPHTTPExporter(endpoint: otlpEndpoint, serviceName: "orchctl-executor"))
            } catch {
                throw ValidationError("--otlp-endpoint: \(error)")
            }
        }
        let tracer = processor.map { Tracer(processor: $0) } ?? .disabled
        do {
            try await lease(executorID: executorID, tracer: tracer)
        } catch {
            await processor?.shutdown()
            throw error
        }
        // Sends the spans still queued before the process exits.
        await processor?.shutdown()
    }

    func lease(executorID: String, tracer: Tracer) async throws {
        let behaviour = Behaviour(
            sleep: .milliseconds(sleepMs), failProbability: failProbability, retryable: !permanentFailures,
            dieAfter: dieAfter, stopAfter: tasks, quiet: quiet, executorID: executorID, tracer: tracer)
        let sender = StreamSender()
        let counter = TaskCounter()
        var pause = Self.firstReconnectPause
        while true {
            do {
                let end = try await withConnection(connection) { connection in
                    try await stream(connection, executorID: executorID, sender: sender, counter: counter, behaviour: behaviour)
                }
                if end == .finished { return }
                if end == .welcomed { pause = Self.firstReconnectPause }
                behaviour.say("stream ended; reconnecting in \(pause)")
            } catch let error as CLIError where Self.isFinal(error) {
                throw error
            } catch {
                behaviour.say("stream failed (\(error)); reconnecting in \(pause)")
            }
            await sender.detach()
            // ±20 %: a fleet restarted together does not reconnect in lockstep.
            try await Task.sleep(for: pause * Double.random(in: 0.8...1.2))
            pause = min(pause * 2, Self.longestReconnectPause)
        }
    }

    /// Reconnection backoff: 0.25 s doubling to 2 s (well inside a lease TTL, so that the leases
    /// of work still running are resumed after a server restart), back to 0.25 s once welcomed.
    static let firstReconnectPause: Duration = .milliseconds(250)
    static let longestReconnectPause: Duration = .seconds(2)

    /// Mistakes another attempt cannot mend (the token, the identity, the server's API): exit.
    static func isFinal(_ error: CLIError) -> Bool {
        guard let code = error.code else { return false }
        return [.unauthenticated, .permissionDenied, .invalidArgument, .unimplemented, .failedPrecondition].contains(code)
    }

    enum StreamEnd { case finished, welcomed, neverWelcomed }

    /// One Lease stream: hello (resuming the leases whose work is still running or whose report
    /// was not acknowledged), then serve it until it ends.
    func stream(
        _ connection: Connection, executorID: String, sender: StreamSender, counter: TaskCounter, behaviour: Behaviour
    ) async throws -> StreamEnd {
        let call = try await connection.executors.lease(options: connection.callOptions(timeout: 0))
        var hello = Orchestrator_V1_ExecutorHello()
        hello.executorID = executorID
        hello.capabilities = capabilities
        hello.maxInFlight = maxInFlight
        hello.version = "orchctl sample executor \(OrchestratorRelease.version)"
        hello.resume = await sender.heldLeases()
        var first = Orchestrator_V1_LeaseRequest()
        first.kind = .hello(hello)
        try await call.send(first)
        return try await Self.serve(call: call, sender: sender, behaviour: behaviour, counter: counter)
    }

    struct Behaviour: Sendable {
        let sleep: Duration
        let failProbability: Double
        let retryable: Bool
        let dieAfter: Int?
        let stopAfter: Int?
        let quiet: Bool
        let executorID: String
        let tracer: Tracer

        /// One line per message, escaped: revocation reasons and refusals quote what other
        /// callers wrote (a cancel's reason), and a raw newline or bidi override in them forged
        /// lines in the operator's terminal (found by black-box testing).
        func say(_ text: String) {
            guard !quiet else { return }
            Output.line(Render.oneLine("[\(executorID)] \(text)"))
        }
    }

    /// Serves one stream until it ends. Each task's work runs on its own, outliving the stream:
    /// its report goes to whichever stream is open when it is done (`StreamSender`).
    static func serve(
        call: RPCBidirectionalCall<Orchestrator_V1_LeaseRequest, Orchestrator_V1_LeaseResponse>, sender: StreamSender,
        behaviour: Behaviour, counter: TaskCounter
    ) async throws -> StreamEnd {
        var welcomed = false
        return try await withThrowingTaskGroup(of: Void.self) { group in
            defer { group.cancelAll() }
            for try await response in call.responses {
                switch response.kind {
                case .welcome(let welcome):
                    welcomed = true
                    behaviour.say("connected: session \(welcome.sessionID), heartbeat every \(welcome.heartbeatIntervalMs) ms")
                    for lost in await sender.attach(call, resumed: welcome.resumed, rejected: welcome.rejectedResumes) {
                        behaviour.say("lease of \(lost) not resumed (it lapsed or finished while we were away); its work is dropped")
                    }
                    let interval = Duration.milliseconds(max(welcome.heartbeatIntervalMs, 100))
                    group.addTask {
                        while !Task.isCancelled {
                            try await Task.sleep(for: interval)
                            var heartbeat = Orchestrator_V1_LeaseRequest()
                            heartbeat.kind = .heartbeat(Orchestrator_V1_HeartbeatSignal())
                            try await sender.send(heartbeat)
                        }
                    }
                case .assignment(let assignment):
                    let number = await counter.started()
                    if let lease = assignment.lease { await sender.hold(lease) }
                    if let stop = behaviour.stopAfter, number == stop {
                        // Enough taken: no more work on any stream of ours. Closing the stream
                        // with an assignment just handed over gave it back as a spent attempt.
                        behaviour.say("taken \(stop == 1 ? "1 task" : "\(stop) tasks") (--tasks); draining")
                        await sender.drain()
                    }
                    Task { await work(assignment, number: number, sender: sender, behaviour: behaviour) }
                case .revocation(let revocation):
                    behaviour.say("lease revoked: \(revocation.lease?.taskID ?? "?") (\(revocation.reason))")
                    if let lease = revocation.lease { await sender.release(lease) }
                case .ack(let ack):
                    let lease = ack.lease ?? Orchestrator_V1_LeaseToken()
                    let taskID = lease.taskID
                    guard !ack.accepted else {
                        await sender.release(lease)
                        await counter.finished()
                        break
                    }
                    // UNAVAILABLE: the server could not store it (its database is out); the lease is
                    // still ours and the report must be sent again (EXECUTORS.md). Dropping it left
                    // the task leased for good, kept alive by our heartbeats (found by black-box
                    // testing).
                    guard ack.code == Int32(RPCStatus.Code.unavailable.rawValue), let retry = await sender.retry(lease) else {
                        await sender.release(lease)
                        behaviour.say("report refused for \(taskID): \(ack.message)")
                        break
                    }
                    behaviour.say("report not stored yet for \(taskID) (\(ack.message)); sending it again in \(retry.delay)")
                    group.addTask {
                        try await Task.sleep(for: retry.delay)
                        try await sender.send(retry.report)
                    }
                default:
                    break
                }
                // Drained (--tasks) and every lease done with: what arrived after the last one we
                // took (before the server read `drain`) was run too, not abandoned.
                if await sender.isDrainedAndIdle {
                    behaviour.say("done: \(await counter.completed) reports accepted")
                    try await call.closeSend()
                    return .finished
                }
            }
            return welcomed ? .welcomed : .neverWelcomed
        }
    }

    static func work(_ assignment: Orchestrator_V1_Assignment, number: Int, sender: StreamSender, behaviour: Behaviour) async {
        let key = assignment.spec?.key ?? "?"
        let lease = assignment.lease ?? Orchestrator_V1_LeaseToken()
        behaviour.say("task \(key) (\(lease.taskID)) attempt \(assignment.attempt)/\(assignment.maxAttempts) trace \(assignment.traceparent)")
        // The work is a child of the orchestrator's dispatch span (the assignment's traceparent).
        let span = behaviour.tracer.startSpan(
            "execute \(key)", kind: .consumer,
            parent: SpanContext.parse(traceparent: assignment.traceparent, tracestate: assignment.tracestate.isEmpty ? nil : assignment.tracestate),
            attributes: [
                "orchestrator.workflow_id": .string(assignment.workflowID), "orchestrator.task_id": .string(lease.taskID),
                "orchestrator.task_key": .string(key), "orchestrator.attempt": .int(Int64(assignment.attempt)),
                "orchestrator.executor_id": .string(behaviour.executorID),
            ])
        defer { span.end() }
        if let dieAfter = behaviour.dieAfter, number >= dieAfter {
            try? await Task.sleep(for: behaviour.sleep / 2)
            behaviour.say("dying mid-task as asked (--die-after \(dieAfter))")
            Output.dieNow()
        }
        try? await Task.sleep(for: behaviour.sleep)
        var report = Orchestrator_V1_LeaseRequest()
        if Double.random(in: 0..<1) < behaviour.failProbability {
            var failure = Orchestrator_V1_TaskFailure()
            failure.lease = lease
            failure.message = "simulated failure"
            failure.code = "SIMULATED"
            failure.retryable = behaviour.retryable
            report.kind = .failure(failure)
            span.setStatus(.error("simulated failure"))
            behaviour.say("task \(key) failed (simulated)")
        } else {
            var completion = Orchestrator_V1_TaskCompletion()
            completion.lease = lease
            completion.result = Array("{\"task\":\"\(key)\",\"executor\":\"\(behaviour.executorID)\"}".utf8)
            report.kind = .completion(completion)
            span.setStatus(.ok)
            behaviour.say("task \(key) done")
        }
        if await !sender.sendReport(report, lease: lease) {
            behaviour.say("task \(key): its lease was lost while disconnected; result dropped")
        }
    }
}

/// The executor's side of its leases across streams: serialises sends on the current stream,
/// keeps each lease whose work runs or whose report is not acknowledged yet (to resume it on the
/// next stream) and each such report (to send it again after UNAVAILABLE, or on the next stream
/// once the lease is resumed).
actor StreamSender {
    private var call: RPCBidirectionalCall<Orchestrator_V1_LeaseRequest, Orchestrator_V1_LeaseResponse>?
    /// By lease, not task: a task whose lease was lost comes back as a new attempt (a new
    /// fencing token) while the old attempt's work may still be running.
    private var held: Set<Orchestrator_V1_LeaseToken> = []
    private var unacknowledged: [Orchestrator_V1_LeaseToken: (report: Orchestrator_V1_LeaseRequest, attempts: Int)] = [:]
    private var draining = false

    /// Sends on the current stream; dropped while there is none (heartbeats; a report is kept).
    func send(_ message: Orchestrator_V1_LeaseRequest) async throws {
        try await call?.send(message)
    }

    /// A new stream was welcomed: forgets the leases the server would not resume (returns their
    /// task ids) and sends again the reports of resumed leases that were never acknowledged.
    func attach(
        _ call: RPCBidirectionalCall<Orchestrator_V1_LeaseRequest, Orchestrator_V1_LeaseResponse>,
        resumed: [Orchestrator_V1_LeaseToken], rejected: [Orchestrator_V1_LeaseToken]
    ) async -> [String] {
        self.call = call
        if draining { try? await call.send(Self.drainRequest) }
        for lease in rejected { release(lease) }
        for lease in resumed {
            if let pending = unacknowledged[lease] { try? await call.send(pending.report) }
        }
        return rejected.map(\.taskID)
    }

    func detach() { call = nil }

    /// Asks for no more work, on this stream and every later one.
    func drain() async {
        draining = true
        try? await call?.send(Self.drainRequest)
    }

    var isDrainedAndIdle: Bool { draining && held.isEmpty }

    private static var drainRequest: Orchestrator_V1_LeaseRequest {
        var request = Orchestrator_V1_LeaseRequest()
        request.kind = .drain(Orchestrator_V1_DrainSignal())
        return request
    }

    func hold(_ lease: Orchestrator_V1_LeaseToken) { held.insert(lease) }

    /// The leases to resume on the next stream.
    func heldLeases() -> [Orchestrator_V1_LeaseToken] {
        held.sorted { ($0.taskID, $0.fencingToken) < ($1.taskID, $1.fencingToken) }
    }

    /// Keeps the report until acknowledged and sends it if a stream is open; false when the lease
    /// was lost meanwhile (not resumed after a reconnect, or revoked): nothing is sent.
    func sendReport(_ report: Orchestrator_V1_LeaseRequest, lease: Orchestrator_V1_LeaseToken) async -> Bool {
        guard held.contains(lease) else { return false }
        unacknowledged[lease] = (report, 0)
        try? await call?.send(report)
        return true
    }

    /// The lease is done with: acknowledged, refused or revoked.
    func release(_ lease: Orchestrator_V1_LeaseToken) {
        held.remove(lease)
        unacknowledged[lease] = nil
    }

    /// The report to send again and how long to wait first (1 s, doubling up to 10 s); nil when
    /// there is none for this lease.
    func retry(_ lease: Orchestrator_V1_LeaseToken) -> (report: Orchestrator_V1_LeaseRequest, delay: Duration)? {
        guard var entry = unacknowledged[lease] else { return nil }
        entry.attempts += 1
        unacknowledged[lease] = entry
        return (entry.report, .seconds(min(10, 1 << min(entry.attempts - 1, 4))))
    }
}

actor TaskCounter {
    private(set) var count = 0
    /// Reports the server accepted.
    private(set) var completed = 0
    func started() -> Int {
        count += 1
        return count
    }
    func finished() { completed += 1 }
}
