import Foundation
import NGRPC
import OrchestratorAPI
import PostgresClient

enum Scenarios {
    static let capability = "bench"

    static func connectExecutors(_ options: Options, count: Int, inFlight: Int, recorder: Recorder) async throws -> [BenchExecutor] {
        try await withThrowingTaskGroup(of: BenchExecutor.self) { group in
            for index in 0..<count {
                group.addTask {
                    try await BenchExecutor.connect(
                        id: "bench-\(index)", host: options.host, port: options.port, capabilities: [capability],
                        maxInFlight: inFlight, recorder: recorder)
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
    }

    /// Waits until `count` completions were accepted; throws when the deadline passes or an executor
    /// recorded why the count cannot be reached.
    static func waitForCompletions(_ recorder: Recorder, count: Int, timeout: Duration = .seconds(900)) async throws {
        let deadline = ContinuousClock.now + timeout
        while recorder.accepted < count {
            if let failure = recorder.failure {
                throw BenchError("\(failure) (\(recorder.accepted) of \(count) completions accepted)")
            }
            if ContinuousClock.now > deadline {
                throw BenchError("only \(recorder.accepted) of \(count) completions accepted before the deadline (\(recorder.refused) refused)")
            }
            try await Task.sleep(for: .milliseconds(2))
        }
    }

    static func seconds(since start: ContinuousClock.Instant) -> Double {
        let elapsed = ContinuousClock.now - start
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    }

    /// Durable end-to-end throughput: `tasks` independent tasks in workflows of `workflowSize`,
    /// submitted four at a time while `executors` streams complete them. Timed from the first
    /// submission to the last accepted completion.
    static func dispatch(_ options: Options, executors count: Int) async throws -> RunRecord {
        let recorder = Recorder()
        let executors = try await connectExecutors(options, count: count, inFlight: options.inFlight, recorder: recorder)
        let channel = try GRPCChannel(host: options.host, port: options.port)
        let submitter = Submitter(host: options.host, port: options.port)
        let workflows = max(1, options.tasks / options.workflowSize)
        let total = workflows * options.workflowSize
        let dag = Submitter.independent(options.workflowSize, capability: capability)
        let start = ContinuousClock.now
        let ids = try await withThrowingTaskGroup(of: [String].self) { group in
            for lane in 0..<4 {
                group.addTask {
                    var ids: [String] = []
                    for _ in stride(from: lane, to: workflows, by: 4) { ids.append(try await submitter.submit(dag, channel: channel)) }
                    return ids
                }
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
        try await waitForCompletions(recorder, count: total)
        let elapsed = seconds(since: start)
        for executor in executors { await executor.close() }
        await channel.close()
        let latencies = ReadyTimes.latencies(
            received: recorder.receivedTimes, ready: try ReadyTimes.load(databaseURL: options.databaseURL, workflowIDs: ids))
        let run = RunRecord(label: "\(count) executors", executors: count, tasks: total, seconds: elapsed, latencies: latencies)
        print("dispatch-bench-run \(run.line) refused=\(recorder.refused)")
        return run
    }

    /// Ready → assignment latency at a light and a heavy offered load: for `seconds`, every 50 ms
    /// one workflow of rate/20 independent tasks (light: 20 tasks/s as 1-task workflows); then the
    /// chain load: every 50 ms one workflow `r → c`, where only the `c` tasks count — they become
    /// ready in the transaction that stores their upstream task's completion (and are claimed, as
    /// direct dispatch is for new workflows' tasks without upstream tasks), the path every task
    /// past the first layer of a DAG takes.
    ///
    /// `--backlog N` first queues N ready tasks needing a capability no executor has, older than
    /// every measured task and so ahead of them in dispatch order: what executors of one kind see
    /// while another kind's pool is offline.
    static func latency(_ options: Options) async throws -> [RunRecord] {
        var runs: [RunRecord] = []
        let count = options.executors.first ?? 8
        if options.backlog > 0 { try await queueBacklog(options) }
        let loads: [(label: String, dag: Orchestrator_V1_Dag, measured: String?)] = [
            ("light", Submitter.independent(max(1, options.lightRate / 20), capability: capability), nil),
            ("heavy", Submitter.independent(max(1, options.heavyRate / 20), capability: capability), nil),
            ("chain", Submitter.chain(capability: capability), "c"),
        ].filter { options.loads.contains($0.label) }
        for (label, dag, measured) in loads {
            let recorder = Recorder()
            let executors = try await connectExecutors(options, count: count, inFlight: options.inFlight, recorder: recorder)
            let channel = try GRPCChannel(host: options.host, port: options.port)
            let submitter = Submitter(host: options.host, port: options.port)
            let perTick = dag.tasks.count
            let ticks = Int(options.seconds * 20)
            let start = ContinuousClock.now
            var submissions: [Task<(String, Double), any Error>] = []
            for tick in 0..<ticks {
                // An open loop: submissions go out on schedule whether or not earlier ones are done.
                try await Task.sleep(until: start + .milliseconds(50 * tick), clock: .continuous)
                submissions.append(Task {
                    let sent = ContinuousClock.now
                    let id = try await submitter.submit(dag, channel: channel)
                    return (id, seconds(since: sent) * 1000)
                })
            }
            var ids: [String] = []
            var submitMillis: [Double] = []
            for submission in submissions {
                let (id, millis) = try await submission.value
                ids.append(id)
                submitMillis.append(millis)
            }
            submitMillis.sort()
            try await waitForCompletions(recorder, count: ticks * perTick)
            let elapsed = seconds(since: start)
            for executor in executors { await executor.close() }
            await channel.close()
            let latencies = ReadyTimes.latencies(
                received: recorder.receivedTimes,
                ready: try ReadyTimes.load(databaseURL: options.databaseURL, workflowIDs: ids, keyPrefix: measured))
            let title = measured == nil ? "\(label) (\(perTick * 20) tasks/s offered)" : "\(label) (r → c, 20 per s; c measured)"
            let run = RunRecord(label: title, executors: count, tasks: ticks * perTick, seconds: elapsed, latencies: latencies)
            // How long SubmitQuery took (planning, storing, commit): part of every task's latency,
            // as ready_at is stamped when the submission started.
            let submitFigures = String(
                format: " submit_p50_ms=%.2f submit_p99_ms=%.2f", percentile(submitMillis, 50), percentile(submitMillis, 99))
            let backlog = options.backlog > 0 ? " backlog=\(options.backlog)" : ""
            print("latency-bench-run load=\(label) offered_tasks_per_s=\(perTick * 20) \(run.line)" + submitFigures + backlog)
            runs.append(run)
        }
        return runs
    }

    /// `options.backlog` ready tasks needing `absentCapability`, in workflows of up to 1,000.
    static func queueBacklog(_ options: Options) async throws {
        let channel = try GRPCChannel(host: options.host, port: options.port)
        let submitter = Submitter(host: options.host, port: options.port)
        var queued = 0
        while queued < options.backlog {
            let size = min(1_000, options.backlog - queued)
            _ = try await submitter.submit(Submitter.independent(size, capability: absentCapability, prefix: "b"), channel: channel)
            queued += size
        }
        await channel.close()
    }

    static let absentCapability = "bench-absent"

    /// One 100,000-task workflow (100 layers × 1,000, two upstream tasks each: 198,000 edges)
    /// submitted through the API, stored, dispatched layer by layer and completed.
    static func workflow100k(_ options: Options) async throws -> RunRecord {
        let recorder = Recorder()
        let count = options.executors.first ?? 16
        let executors = try await connectExecutors(options, count: count, inFlight: options.inFlight, recorder: recorder)
        let channel = try GRPCChannel(host: options.host, port: options.port)
        let dag = Submitter.layered(layers: 100, width: 1_000, capability: capability)
        let start = ContinuousClock.now
        let id = try await Submitter(host: options.host, port: options.port).submit(dag, channel: channel)
        let submitSeconds = seconds(since: start)
        try await waitForCompletions(recorder, count: 100_000, timeout: .seconds(1800))
        let elapsed = seconds(since: start)
        for executor in executors { await executor.close() }
        await channel.close()
        // The workflow must have finished, succeeded, in the database.
        let connection = try PostgresConnection(conninfo: options.databaseURL)
        var state = "?"
        for _ in 0..<100 {
            state = try connection.query("SELECT state FROM workflows WHERE id = $1", [id]).first?.decode(String.self, column: "state") ?? "missing"
            if state != "running" { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        let latencies = ReadyTimes.latencies(
            received: recorder.receivedTimes, ready: try ReadyTimes.load(databaseURL: options.databaseURL, workflowIDs: [id]))
        let run = RunRecord(label: "100k-task workflow", executors: count, tasks: 100_000, seconds: elapsed, latencies: latencies)
        print(String(format: "workflow100k-bench-run submit_s=%.2f state=%@ ", submitSeconds, state) + run.line)
        return run
    }
}
