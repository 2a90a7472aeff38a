import ArgumentParser
import Foundation
import NGRPC
import OrchestratorAPI
import OrchestratorTracing

/// A sample executor on the Lease stream, with configurable behaviour for demos and manual
/// testing: how long tasks take, how often they fail, and whether the process dies mid-task.
struct ExecutorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "executor", abstract: "Run a sample executor that leases tasks and reports on them.")

    @OptionGroup var connection: ConnectionOptions

    @Option(name: .long, help: "Executor id (default: orchctl-<pid>).") var id: String?
    @Option(name: .long, parsing: .upToNextOption, help: "Capabilities it advertises.") var capabilities: [String] = []
    @Option(name: .long, help: "Tasks run at once.") var maxInFlight: Int32 = 1
    @Option(name: .long, help: "How long each task takes, in milliseconds.") var sleepMs: Int = 200
    @Option(name: .long, help: "Probability in [0, 1] that a task fails.") var failProbability: Double = 0
    @Flag(name: .long, help: "Report failures as not retryable.") var permanentFailures = false
    @Option(name: .long, help: "Kill this process (no goodbye) in the middle of the Nth task.") var dieAfter: Int?
    @Option(name: .long, help: "Exit cleanly after completing this many tasks.") var tasks: Int?
    @Flag(name: .long, help: "Print nothing but errors.") var quiet = false
    @Option(name: .long, help: "OTLP/HTTP collector base URL: each task's work becomes a span continuing the assignment's traceparent (env OTEL_EXPORTER_OTLP_ENDPOINT).")
    var otlpEndpoint: String? = ProcessEnvironment.value("OTEL_EXPORTER_OTLP_ENDPOINT")

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
        try await withConnection(connection) { connection in
            let call = try await connection.executors.lease(options: connection.callOptions(timeout: 0))
            let sender = StreamSender(call: call)
            var hello = Orchestrator_V1_ExecutorHello()
            hello.executorID = executorID
            hello.capabilities = capabilities
            hello.maxInFlight = maxInFlight
            hello.version = "orchctl sample executor"
            var first = Orchestrator_V1_LeaseRequest()
            first.kind = .hello(hello)
            try await sender.send(first)
            let behaviour = Behaviour(
                sleep: .milliseconds(sleepMs), failProbability: failProbability, retryable: !permanentFailures,
                dieAfter: dieAfter, stopAfter: tasks, quiet: quiet, executorID: executorID, tracer: tracer)
            try await Self.serve(call: call, sender: sender, behaviour: behaviour)
        }
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

        func say(_ text: String) {
            guard !quiet else { return }
            Output.line("[\(executorID)] \(text)")
        }
    }

    static func serve(call: RPCBidirectionalCall<Orchestrator_V1_LeaseRequest, Orchestrator_V1_LeaseResponse>, sender: StreamSender, behaviour: Behaviour) async throws {
        let counter = TaskCounter()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for try await response in call.responses {
                switch response.kind {
                case .welcome(let welcome):
                    behaviour.say("connected: session \(welcome.sessionID), heartbeat every \(welcome.heartbeatIntervalMs) ms")
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
                    group.addTask { try await work(assignment, number: number, sender: sender, behaviour: behaviour, counter: counter) }
                case .revocation(let revocation):
                    behaviour.say("lease revoked: \(revocation.lease?.taskID ?? "?") (\(revocation.reason))")
                case .ack(let ack):
                    let taskID = ack.lease?.taskID ?? "?"
                    guard !ack.accepted else {
                        await sender.acknowledged(taskID)
                        break
                    }
                    // UNAVAILABLE: the server could not store it (its database is out); the lease is
                    // still ours and the report must be sent again (EXECUTORS.md). Dropping it left
                    // the task leased for good, kept alive by our heartbeats (found by black-box
                    // testing).
                    guard ack.code == Int32(RPCStatus.Code.unavailable.rawValue), let retry = await sender.retry(taskID) else {
                        await sender.acknowledged(taskID)
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
                if let stop = behaviour.stopAfter, await counter.completed >= stop {
                    try await call.closeSend()
                    group.cancelAll()
                    return
                }
            }
            group.cancelAll()
        }
    }

    static func work(_ assignment: Orchestrator_V1_Assignment, number: Int, sender: StreamSender, behaviour: Behaviour, counter: TaskCounter) async throws {
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
            try await Task.sleep(for: behaviour.sleep / 2)
            behaviour.say("dying mid-task as asked (--die-after \(dieAfter))")
            Output.dieNow()
        }
        try await Task.sleep(for: behaviour.sleep)
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
        try await sender.sendReport(report, taskID: lease.taskID)
        await counter.finished()
    }
}

/// Serialises sends on one stream from several tasks, and keeps each report until it is
/// acknowledged, to send it again when the server answers UNAVAILABLE.
actor StreamSender {
    let call: RPCBidirectionalCall<Orchestrator_V1_LeaseRequest, Orchestrator_V1_LeaseResponse>
    private var unacknowledged: [String: (report: Orchestrator_V1_LeaseRequest, attempts: Int)] = [:]

    init(call: RPCBidirectionalCall<Orchestrator_V1_LeaseRequest, Orchestrator_V1_LeaseResponse>) { self.call = call }

    func send(_ message: Orchestrator_V1_LeaseRequest) async throws { try await call.send(message) }

    func sendReport(_ report: Orchestrator_V1_LeaseRequest, taskID: String) async throws {
        unacknowledged[taskID] = (report, 0)
        try await call.send(report)
    }

    func acknowledged(_ taskID: String) { unacknowledged[taskID] = nil }

    /// The report to send again and how long to wait first (1 s, doubling up to 10 s); nil when
    /// there is none for this task.
    func retry(_ taskID: String) -> (report: Orchestrator_V1_LeaseRequest, delay: Duration)? {
        guard var entry = unacknowledged[taskID] else { return nil }
        entry.attempts += 1
        unacknowledged[taskID] = entry
        return (entry.report, .seconds(min(10, 1 << min(entry.attempts - 1, 4))))
    }
}

actor TaskCounter {
    private(set) var count = 0
    private(set) var completed = 0
    func started() -> Int {
        count += 1
        return count
    }
    func finished() { completed += 1 }
}
