// DomainBench: the driver behind `tools/bench domain`.
//
//   DomainBench generate --tasks N --edges M --seed S --out FILE   writes a random DAG (text, see GraphFile)
//   DomainBench analyse FILE [--repeat R]                           times our validate + order + critical path
//
// The analysis is timed on an already-loaded `Dag` value, as networkx is timed on an already-built
// DiGraph: parsing the file is excluded on both sides.
import OrchestratorDomain

let arguments = Array(CommandLine.arguments.dropFirst())

func option(_ name: String, default value: String? = nil) -> String {
    if let i = arguments.firstIndex(of: name), i + 1 < arguments.count { return arguments[i + 1] }
    if let value { return value }
    fail("missing \(name)")
}

func fail(_ message: String) -> Never {
    printError("DomainBench: \(message)")
    exitProcess(2)
}

switch arguments.first {
case "generate":
    let tasks = Int(option("--tasks")) ?? 0
    let edges = Int(option("--edges")) ?? 0
    let seed = UInt64(option("--seed", default: "42")) ?? 42
    let path = option("--out")
    guard tasks >= 2, edges >= 0, edges <= tasks * (tasks - 1) / 2 else { fail("impossible size") }
    let started = ContinuousClock.now
    let bytes = RandomDagGenerator.generate(tasks: tasks, edges: edges, seed: seed)
    do { try writeFile(path, bytes) } catch { fail("\(error)") }
    let ms = millis(ContinuousClock.now - started)
    print("generated tasks=\(tasks) edges=\(edges) seed=\(seed) bytes=\(bytes.count) ms=\(format(ms)) file=\(path)")
case "analyse", "analyze":
    guard arguments.count >= 2 else { fail("usage: DomainBench analyse FILE [--repeat R]") }
    let repeats = max(1, Int(option("--repeat", default: "5")) ?? 5)
    Analyse.run(path: arguments[1], repeats: repeats)
default:
    fail("usage: DomainBench generate --tasks N --edges M [--seed S] --out FILE | analyse FILE [--repeat R]")
}
