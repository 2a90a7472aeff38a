import Foundation
import NGRPC
import OrchestratorAPI

/// `scale`: the cost of many connected, idle executors. Opens `streams` Lease streams spread over
/// `connections` HTTP/2 connections (the server allows `max-concurrent-streams`, default 100, per
/// connection), each heartbeating at the interval the server announced, holds them for
/// `seconds`, then closes them. Samples the server's RSS, CPU time and open files from /proc
/// (`--server-pid`) at idle, through the steady window and after the close, and checks that the
/// server still answers a normal call afterwards.
enum ScaleScenario {
    /// `rounds` open/hold/close cycles against the same server: memory still held after the first
    /// close is either kept by the allocator for reuse (a second round then costs little more) or
    /// leaked (each round adds its own).
    static func run(_ options: Options) async throws -> [ScaleRecord] {
        precondition(options.serverPID > 0, "scale needs --server-pid")
        precondition(options.connections > 0 && options.streams >= options.connections)
        try await normalCall(options)
        try await Task.sleep(for: .seconds(2))
        let idle = try ProcSample.read(pid: options.serverPID)
        var records: [ScaleRecord] = []
        for round in 1...options.rounds {
            records.append(try await cycle(options, round: round, idle: idle))
        }
        return records
    }

    static func cycle(_ options: Options, round: Int, idle: ProcSample) async throws -> ScaleRecord {
        let pid = options.serverPID
        let counters = ScaleCounters()
        let before = try ProcSample.read(pid: pid)

        // Open every stream: connections in parallel, each connection's streams in parallel.
        let opened = ContinuousClock.now
        let channels = try (0..<options.connections).map { _ in try GRPCChannel(host: options.host, port: options.port) }
        let perConnection = split(options.streams, into: options.connections)
        let streams = try await withThrowingTaskGroup(of: [ScaleStream].self) { group in
            var next = 0
            for (index, count) in perConnection.enumerated() {
                let first = next
                next += count
                group.addTask {
                    try await withThrowingTaskGroup(of: ScaleStream.self) { inner in
                        for id in first..<(first + count) {
                            inner.addTask { try await ScaleStream.open(id: "scale-\(id)", channel: channels[index], counters: counters) }
                        }
                        return try await inner.reduce(into: []) { $0.append($1) }
                    }
                }
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
        let openSeconds = Scenarios.seconds(since: opened)
        print("scale-open streams=\(streams.count) connections=\(channels.count) open_s=\(fmt(openSeconds))")

        // One heartbeat interval (plus margin) so every stream is in its steady rhythm.
        try await Task.sleep(for: .seconds(options.heartbeatWarmup))
        let start = try ProcSample.read(pid: pid)
        let acksAtStart = counters.heartbeatAcks.load(ordering: .relaxed)
        var peakKiB = start.rssKiB
        let end = ContinuousClock.now + .seconds(options.seconds)
        while ContinuousClock.now < end {
            try await Task.sleep(for: .seconds(1))
            peakKiB = max(peakKiB, try ProcSample.read(pid: pid).rssKiB)
        }
        let steady = try ProcSample.read(pid: pid)
        let acks = counters.heartbeatAcks.load(ordering: .relaxed) - acksAtStart
        let window = Scenarios.seconds(since: start.at) - Scenarios.seconds(since: steady.at)
        let endedEarly = counters.endedEarly.load(ordering: .relaxed)

        // Close everything, then see that the server let go and still answers.
        counters.closing.store(true, ordering: .relaxed)
        let closing = ContinuousClock.now
        await withTaskGroup(of: Void.self) { group in
            for stream in streams { group.addTask { await stream.close() } }
        }
        for channel in channels { await channel.close() }
        let closeSeconds = Scenarios.seconds(since: closing)
        try await Task.sleep(for: .seconds(5))
        try await normalCall(options)
        let after = try ProcSample.read(pid: pid)

        let streamKiB = Double(steady.rssKiB - idle.rssKiB) / Double(streams.count)
        let record = ScaleRecord(values: [
            "round": Double(round), "rss_before_mib": before.rssMiB, "streams": Double(streams.count), "connections": Double(channels.count),
            "rss_idle_mib": idle.rssMiB, "rss_mib": steady.rssMiB, "rss_peak_mib": Double(peakKiB) / 1024,
            "rss_after_close_mib": after.rssMiB, "rss_per_stream_kib": streamKiB,
            "cpu_pct": steady.cpuPercent(since: start), "heartbeats_per_s": Double(acks) / window,
            "expected_heartbeats_per_s": Double(streams.count) / options.heartbeatInterval,
            "open_s": openSeconds, "close_s": closeSeconds, "window_s": window,
            "fds_idle": Double(idle.openFiles), "fds": Double(steady.openFiles), "fds_after_close": Double(after.openFiles),
            "ended_early": Double(endedEarly), "assignments": Double(counters.assignments.load(ordering: .relaxed)),
            "load_avg": RunRecord.loadAverage(),
        ])
        print("scale-run " + record.line)
        guard endedEarly == 0 else { throw BenchError("\(endedEarly) streams ended before the bench closed them") }
        return record
    }

    /// A plain unary call (the polling executors' Heartbeat, holding nothing): the server answers.
    static func normalCall(_ options: Options) async throws {
        let channel = try GRPCChannel(host: options.host, port: options.port)
        defer { Task { await channel.close() } }
        var request = Orchestrator_V1_HeartbeatRequest()
        request.executorID = "scale-probe"
        _ = try await Orchestrator_V1_ExecutorsClient(channel: channel).heartbeat(request, options: CallOptions(timeout: .seconds(10)))
    }

    /// `total` spread over `parts` as evenly as possible.
    static func split(_ total: Int, into parts: Int) -> [Int] {
        (0..<parts).map { total / parts + ($0 < total % parts ? 1 : 0) }
    }

    static func fmt(_ value: Double) -> String { String(format: "%.2f", value) }
}

/// One scale run's figures, printed as `key=value` and written as JSON.
struct ScaleRecord: Encodable {
    var values: [String: Double]

    var line: String {
        values.keys.sorted().map { key in
            let value = values[key]!
            return value == value.rounded() && abs(value) < 1e15 ? "\(key)=\(Int(value))" : "\(key)=\(ScaleScenario.fmt(value))"
        }.joined(separator: " ")
    }

    static func write(_ records: [ScaleRecord], to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(records.map(\.values)).write(to: URL(fileURLWithPath: path))
    }
}
