// DispatchBench: the load generator of `tools/bench dispatch|latency|workflow100k` (scripts in
// tools/bench.d). It drives a running orchestratord through the public gRPC API only — workflows
// in through SubmitQuery, tasks out through Lease streams whose executors complete each
// assignment the moment it arrives — and reads the tasks' ready times from the database afterwards.
//
//   DispatchBench SCENARIO --address HOST:PORT --database-url URL [--json FILE] [options]
//     dispatch     --executors "1 8 64" --tasks 20000 --workflow-size 1000 --in-flight 16
//     latency      --executors 8 --seconds 10 --light-rate 20 --heavy-rate 1000 --loads "light heavy chain"
//     workflow100k --executors 16 --in-flight 64
//     scale        --server-pid PID --streams 10000 --connections 125 --seconds 30 --heartbeat-interval 5 --rounds 2
//                  (no --database-url: idle heartbeating Lease streams; ScaleScenario.swift)
//
// Every run prints one `NAME-run key=value …` line; the script prints the summary line.
import Foundation
import NGRPC
import OrchestratorAPI

let options = Options.parse(Array(CommandLine.arguments.dropFirst()))
do {
    var report = JSONReport(scenario: options.scenario)
    switch options.scenario {
    case "dispatch":
        for executors in options.executors {
            let run = try await Scenarios.dispatch(options, executors: executors)
            report.runs.append(run)
        }
    case "latency":
        report.runs += try await Scenarios.latency(options)
    case "workflow100k":
        report.runs.append(try await Scenarios.workflow100k(options))
    case "scale":
        let records = try await ScaleScenario.run(options)
        if let path = options.json { try ScaleRecord.write(records, to: path) }
        exit(0)
    default:
        Options.fail("unknown scenario \(options.scenario)")
    }
    if let path = options.json { try report.write(to: path) }
} catch {
    // A failed run is a message and exit status 1, not a crash report.
    FileHandle.standardError.write(Data("DispatchBench \(options.scenario): \(error)\n".utf8))
    exit(1)
}
