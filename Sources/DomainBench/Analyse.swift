import OrchestratorDomain

/// Loads a graph file and times validate (which produces the topological order) plus remaining-path
/// ranks plus the critical path, `repeats` times; prints the median and the fastest run.
enum Analyse {
    static func run(path: String, repeats: Int) {
        let loadStart = ContinuousClock.now
        let header: GraphFile.Header
        let dag: Dag
        do {
            (header, dag) = try GraphFile.parse(try readFile(path))
        } catch {
            fail("\(error)")
        }
        let loadMs = millis(ContinuousClock.now - loadStart)
        let rssBefore = currentRSSMiB()

        let validator = DagValidator(limits: .unbounded)
        var totals: [Double] = []
        var validateTimes: [Double] = []
        var pathTimes: [Double] = []
        var cpuTimes: [Double] = []
        var length = 0.0
        var pathCount = 0
        for _ in 0..<repeats {
            let cpu0 = cpuMillis()
            let t0 = ContinuousClock.now
            let graph: ValidatedDag
            do { graph = try validator.validate(dag) } catch { fail("generated graph is invalid: \(error)") }
            let t1 = ContinuousClock.now
            let ranks = CriticalPathAnalysis.ranks(graph)
            let path = CriticalPathAnalysis.criticalPath(graph, ranks: ranks)
            let t2 = ContinuousClock.now
            cpuTimes.append(cpuMillis() - cpu0)
            precondition(graph.topologicalOrder.count == header.tasks)
            length = path.length
            pathCount = path.ids.count
            validateTimes.append(millis(t1 - t0))
            pathTimes.append(millis(t2 - t1))
            totals.append(millis(t2 - t0))
        }
        let median = { (xs: [Double]) in xs.sorted()[xs.count / 2] }
        print(
            "ours tasks=\(header.tasks) edges=\(header.edges) load_ms=\(format(loadMs))"
                + " validate_and_order_ms=\(format(median(validateTimes))) ranks_and_critical_path_ms=\(format(median(pathTimes)))"
                + " total_ms=\(format(median(totals))) best_ms=\(format(totals.min()!)) cpu_ms=\(format(median(cpuTimes))) runs=\(repeats)"
                + " critical_path_length=\(Int(length)) critical_path_tasks=\(pathCount)"
                + " rss_after_load_mib=\(format(rssBefore)) peak_mib=\(format(peakRSSMiB()))")
    }
}
