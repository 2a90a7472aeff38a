import Foundation

/// Command-line options (a handful of flags; no parser library needed).
struct Options {
    var scenario = ""
    var host = "127.0.0.1"
    var port = 50051
    var databaseURL = ""
    var json: String?
    var executors = [1, 8, 64]
    var tasks = 20_000
    var workflowSize = 1_000
    var inFlight = 16
    var seconds = 10.0
    var lightRate = 20
    var heavyRate = 1_000
    /// Which latency loads run, in order (light, heavy, chain).
    var loads = ["light", "heavy", "chain"]
    /// Ready tasks no executor can run, queued ahead of the latency loads (a pool of executors offline).
    var backlog = 0
    // scale (ScaleScenario)
    var streams = 10_000
    var connections = 125
    var serverPID: Int32 = 0
    var rounds = 2
    /// The orchestratord --heartbeat-interval, in seconds: the expected heartbeat rate, and how
    /// long to wait after opening before the window starts (one interval plus a second).
    var heartbeatInterval = 5.0
    var heartbeatWarmup: Double { heartbeatInterval + 1 }

    static let scenarios = ["dispatch", "latency", "workflow100k", "scale"]

    static let usage = """
        usage: DispatchBench SCENARIO --address HOST:PORT --database-url URL [--json FILE] [options]
          dispatch     --executors "1 8 64" --tasks 20000 --workflow-size 1000 --in-flight 16
          latency      --executors 8 --seconds 10 --light-rate 20 --heavy-rate 1000 --loads "light heavy chain" --backlog 0
          workflow100k --executors 16 --in-flight 64
          scale        --server-pid PID --streams 10000 --connections 125 --seconds 30 --heartbeat-interval 5 --rounds 2
                       (no --database-url)
        Meant to be run by tools/bench (dispatch, latency, workflow100k, scale), which starts the server.
        """

    /// Prints `message` and the usage to standard error and exits with status 2.
    static func fail(_ message: String) -> Never {
        FileHandle.standardError.write(Data("DispatchBench: \(message)\n\(usage)\n".utf8))
        exit(2)
    }

    static func parse(_ arguments: [String]) -> Options {
        var options = Options()
        if arguments.contains(where: { $0 == "--help" || $0 == "-h" }) {
            print(usage)
            exit(0)
        }
        guard let scenario = arguments.first else { fail("no scenario given") }
        guard scenarios.contains(scenario) else { fail("unknown scenario \(scenario)") }
        options.scenario = scenario
        var iterator = arguments.dropFirst().makeIterator()
        while let flag = iterator.next() {
            guard let value = iterator.next() else { fail("missing value for \(flag)") }
            func number<N: LosslessStringConvertible>(_: N.Type = N.self) -> N {
                guard let parsed = N(value) else { fail("\(flag) needs a number, got \(value)") }
                return parsed
            }
            switch flag {
            case "--address":
                let parts = value.split(separator: ":")
                guard parts.count == 2, let port = Int(parts[1]) else { fail("--address needs HOST:PORT, got \(value)") }
                options.host = String(parts[0])
                options.port = port
            case "--database-url": options.databaseURL = value
            case "--json": options.json = value
            case "--executors":
                options.executors = value.split(separator: " ").compactMap { Int($0) }
                if options.executors.isEmpty { fail("--executors needs counts, got \(value)") }
            case "--tasks": options.tasks = number()
            case "--workflow-size": options.workflowSize = number()
            case "--in-flight": options.inFlight = number()
            case "--seconds": options.seconds = number()
            case "--light-rate": options.lightRate = number()
            case "--heavy-rate": options.heavyRate = number()
            case "--loads": options.loads = value.split(separator: " ").map(String.init)
            case "--backlog": options.backlog = number()
            case "--streams": options.streams = number()
            case "--connections": options.connections = number()
            case "--server-pid": options.serverPID = number()
            case "--rounds": options.rounds = number()
            case "--heartbeat-interval": options.heartbeatInterval = number()
            default: fail("unknown option \(flag)")
            }
        }
        if options.scenario != "scale" && options.databaseURL.isEmpty { fail("--database-url is required") }
        return options
    }
}
