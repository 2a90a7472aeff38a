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
    // scale (ScaleScenario)
    var streams = 10_000
    var connections = 125
    var serverPID: Int32 = 0
    var rounds = 2
    /// The orchestratord --heartbeat-interval, in seconds: the expected heartbeat rate, and how
    /// long to wait after opening before the window starts (one interval plus a second).
    var heartbeatInterval = 5.0
    var heartbeatWarmup: Double { heartbeatInterval + 1 }

    static func parse(_ arguments: [String]) -> Options {
        var options = Options()
        guard let scenario = arguments.first else { fatalError("usage: DispatchBench SCENARIO --address HOST:PORT --database-url URL …") }
        options.scenario = scenario
        var iterator = arguments.dropFirst().makeIterator()
        while let flag = iterator.next() {
            guard let value = iterator.next() else { fatalError("missing value for \(flag)") }
            switch flag {
            case "--address":
                let parts = value.split(separator: ":")
                options.host = String(parts[0])
                options.port = Int(parts[1])!
            case "--database-url": options.databaseURL = value
            case "--json": options.json = value
            case "--executors": options.executors = value.split(separator: " ").compactMap { Int($0) }
            case "--tasks": options.tasks = Int(value)!
            case "--workflow-size": options.workflowSize = Int(value)!
            case "--in-flight": options.inFlight = Int(value)!
            case "--seconds": options.seconds = Double(value)!
            case "--light-rate": options.lightRate = Int(value)!
            case "--heavy-rate": options.heavyRate = Int(value)!
            case "--loads": options.loads = value.split(separator: " ").map(String.init)
            case "--streams": options.streams = Int(value)!
            case "--connections": options.connections = Int(value)!
            case "--server-pid": options.serverPID = Int32(value)!
            case "--rounds": options.rounds = Int(value)!
            case "--heartbeat-interval": options.heartbeatInterval = Double(value)!
            default: fatalError("unknown option \(flag)")
            }
        }
        precondition(options.scenario == "scale" || !options.databaseURL.isEmpty, "--database-url is required")
        return options
    }
}
