import Testing
@testable import OrchestratorDomain

@Suite("DAG validation")
struct DagValidatorTests {
    @Test(arguments: CanonicalShape.allCases)
    func canonicalShapesAreValid(shape: CanonicalShape) throws {
        let graph = try Graphs.validate(shape.dag)
        #expect(graph.topologicalOrder.count == shape.dag.tasks.count)
    }

    @Test func emptyGraphIsRejected() {
        let failure = Graphs.failure(Dag())
        #expect(failure?.issues.map(\.code) == [.emptyGraph])
        #expect(failure?.issues.first?.message == "the graph has no tasks; a workflow needs at least one task")
    }

    @Test func duplicateKeyNamesBothPositions() {
        let failure = Graphs.failure(Graphs.dag(["a", "b", "a"], edges: []))
        #expect(failure?.issues == [
            ValidationIssue(code: .duplicateKey, message: "task #2 reuses key `a` already used by task #0; keys must be unique", taskKeys: ["a"])
        ])
    }

    @Test func unknownReferencesSaySourceOrTarget() {
        let failure = Graphs.failure(Graphs.dag(["a"], edges: [("a", "ghost"), ("phantom", "a"), ("x", "y")]))
        #expect(failure?.issues.map(\.message) == [
            "edge #0 (a → ghost) refers to unknown task `ghost` (its target)",
            "edge #1 (phantom → a) refers to unknown task `phantom` (its source)",
            "edge #2 (x → y) refers to unknown tasks `x` (its source) and `y` (its target)",
        ])
        #expect(failure?.issues.map(\.taskKeys) == [["ghost"], ["phantom"], ["x", "y"]])
    }

    /// Each cost finite, their sum not: stored as the plan's total, it failed the submission as INTERNAL.
    @Test func costsWhoseSumOverflowsAreRejected() {
        var dag = Graphs.dag(["a", "b"], edges: [])
        for index in dag.tasks.indices { dag.tasks[index].estimatedCost = 1e308 }
        let failure = Graphs.failure(dag)
        #expect(failure?.issues.map(\.code) == [.invalidCost])
        #expect(failure?.issues.first?.message.hasPrefix("the tasks' estimated costs add up to more than") == true)
        dag.tasks[1].estimatedCost = 1
        #expect(Graphs.failure(dag) == nil)
    }

    @Test func selfLoop() {
        let failure = Graphs.failure(Graphs.dag(["a", "b"], edges: [("a", "b"), ("b", "b")]))
        #expect(failure?.issues == [
            ValidationIssue(code: .selfLoop, message: "edge #1 (b → b) makes task `b` depend on itself", taskKeys: ["b"])
        ])
    }

    @Test func duplicateEdge() {
        let failure = Graphs.failure(Graphs.dag(["a", "b"], edges: [("a", "b"), ("a", "b")]))
        #expect(failure?.issues.map(\.code) == [.duplicateEdge])
        #expect(failure?.issues.first?.message == "edge `a → b` is listed more than once")
    }

    @Test func cycleIsReportedWithItsPath() {
        let failure = Graphs.failure(Graphs.dag(["a", "b", "c", "d"], edges: [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")]))
        #expect(failure?.issues == [
            ValidationIssue(
                code: .cycle, message: "cycle: a → b → c → a (3 tasks); remove one of these dependencies",
                taskKeys: ["a", "b", "c"])
        ])
    }

    @Test func everyIndependentCycleIsReported() {
        let failure = Graphs.failure(
            Graphs.dag(["a", "b", "c", "d", "e"], edges: [("a", "b"), ("b", "a"), ("c", "d"), ("d", "e"), ("e", "c"), ("b", "c")]))
        #expect(failure?.issues.map(\.taskKeys) == [["a", "b"], ["c", "d", "e"]])
    }

    @Test func shortestCycleThroughTheFirstTaskIsNamed() {
        // a → b → c → d → a and the shortcut b → d: both cycles run through a; the shorter is named.
        let failure = Graphs.failure(
            Graphs.dag(["a", "b", "c", "d"], edges: [("a", "b"), ("b", "c"), ("c", "d"), ("d", "a"), ("b", "d")]))
        #expect(failure?.issues.map(\.taskKeys) == [["a", "b", "d"]])
    }

    @Test func longCycleIsFoundWithoutRecursionAndElidedInTheMessage() throws {
        let n = 200_000
        let keys = (0..<n).map { "k\($0)" }
        let edges = (0..<n).map { (keys[$0], keys[($0 + 1) % n]) }
        let failure = try #require(Graphs.failure(Graphs.dag(keys, edges: edges), limits: .unbounded))
        #expect(failure.issues.count == 1)
        #expect(failure.issues[0].taskKeys.count == n)
        #expect(failure.issues[0].message.hasPrefix("cycle: k0 → k1 → "))
        #expect(failure.issues[0].message.contains("… 199978 more … → k199990"))
        #expect(failure.issues[0].message.hasSuffix("k199999 → k0 (200000 tasks); remove one of these dependencies"))
    }

    @Test func keyRules() {
        let limits = ValidationLimits(maxKeyLength: 10)
        let dag = Dag(tasks: [
            TaskSpec(key: ""), TaskSpec(key: "way-too-long-key"), TaskSpec(key: "has space"), TaskSpec(key: "ünï"),
        ])
        let failure = Graphs.failure(dag, limits: limits)
        #expect(failure?.issues.map(\.code) == [.emptyKey, .keyTooLong, .invalidKeyCharacter, .invalidKeyCharacter])
        #expect(failure?.issues.map(\.message) == [
            "task #0 has an empty key",
            "task #1 key `way-too-long-key` is 16 bytes long; the limit is 10",
            "task #2 key `has space` has ' ' (U+0020) at byte 3; keys may contain only ASCII letters, digits, '-', '_', '.' and ':'",
            "task #3 key `ünï` has a non-ASCII character at byte 0; keys may contain only ASCII letters, digits, '-', '_', '.' and ':'",
        ])
    }

    @Test func customCharset() throws {
        let limits = ValidationLimits(keyCharset: KeyCharset(allowing: "abc/", description: "a, b, c and '/'"))
        _ = try Graphs.validate(Graphs.dag(["a/b", "c"], edges: []), limits: limits)
        #expect(Graphs.failure(Graphs.dag(["a-b"], edges: []), limits: limits)?.issues.map(\.code) == [.invalidKeyCharacter])
    }

    @Test func taskFieldRules() {
        var bad = TaskSpec(key: "a", estimatedCost: -1, retry: RetryPolicy(maxAttempts: 0))
        bad.metadata = ["blob": String(repeating: "x", count: 100)]
        let nan = TaskSpec(key: "b", estimatedCost: .nan)
        let failure = Graphs.failure(Dag(tasks: [bad, nan]), limits: ValidationLimits(maxMetadataBytesPerTask: 64))
        #expect(failure?.issues.map(\.message) == [
            "task `a` has estimated cost -1.0; it must be a finite number ≥ 0",
            "task `a` allows 0 attempts; it must allow at least 1",
            "task `a` carries 104 bytes of labels and metadata (its own and the query's labels, which every task inherits); the limit is 64",
            "task `b` has estimated cost nan; it must be a finite number ≥ 0",
        ])
    }

    @Test func labelsAndMetadataAreBoundedForTheWholeGraph() throws {
        // What a query's labels become: a copy on every task. Each task is within its own limit.
        let query = Query(text: "q", labels: ["team": String(repeating: "x", count: 996)])
        let tasks = (0..<10).map { query.inherited(by: TaskSpec(key: TaskKey("t\($0)"))) }
        var limits = ValidationLimits()
        limits.maxMetadataBytesPerGraph = 9_999
        let failure = Graphs.failure(Dag(tasks: tasks), limits: limits)
        #expect(failure?.issues.map(\.code) == [.metadataTooLarge])
        #expect(failure?.issues.first?.message == "the graph's tasks carry 10000 bytes of labels and metadata in all (each task's own "
            + "and the query's labels, which every task inherits); the limit for a graph is 9999: keep values the tasks share in the "
            + "query's inputs, which are stored once")
        limits.maxMetadataBytesPerGraph = 10_000
        _ = try Graphs.validate(Dag(tasks: tasks), limits: limits)
        #expect(ValidationLimits.default.maxMetadataBytesPerGraph == 64 * 1024 * 1024)
    }

    @Test func sizeAndDegreeLimits() {
        let limits = ValidationLimits(maxTasks: 3, maxEdges: 2, maxFanIn: 1, maxFanOut: 2)
        let dag = Graphs.dag(["a", "b", "c", "d"], edges: [("a", "b"), ("a", "c"), ("a", "d"), ("b", "d")])
        let failure = Graphs.failure(dag, limits: limits)
        #expect(failure?.issues.map(\.message) == [
            "the graph has 4 tasks; the limit is 3",
            "the graph has 4 edges; the limit is 2",
            "task `a` has 3 downstream tasks; the fan-out limit is 2",
            "task `d` has 2 upstream tasks; the fan-in limit is 1",
        ])
    }

    @Test func farOversizedGraphGetsOnlyItsSizeProblems() {
        let limits = ValidationLimits(maxTasks: 2, maxEdges: 100)
        let failure = Graphs.failure(Graphs.dag(["a", "b", "c", "d", "e", "bad key"], edges: [("a", "zz")]), limits: limits)
        #expect(failure?.issues.map(\.message) == ["the graph has 6 tasks; the limit is 2"])
        // Found by black-box testing: 2 × limit + 1 tasks still got full validation (21 of 10).
        let justOver = Graphs.failure(Graphs.dag(["a", "b", "c", "d", "bad key"], edges: []), limits: limits)
        #expect(justOver?.issues.map(\.message) == ["the graph has 5 tasks; the limit is 2"])
        // Exactly twice over is validated in full.
        let twice = Graphs.failure(Graphs.dag(["a", "b", "c", "bad key"], edges: []), limits: limits)
        #expect(twice?.codes == [.tooManyTasks, .invalidKeyCharacter])
    }

    @Test func fanOutAndFanInOf10kFitTheDefaultLimits() throws {
        _ = try Graphs.validate(CanonicalShape.fanOut10k.dag)
        _ = try Graphs.validate(CanonicalShape.fanIn10k.dag)
        var tooWide = CanonicalShape.fanOut10k.dag
        tooWide.tasks.append(TaskSpec(key: "one-more"))
        tooWide.edges.append(Edge("root", "one-more"))
        #expect(Graphs.failure(tooWide)?.issues.map(\.code) == [.fanOutExceeded])
    }

    /// One graph with one of every mistake: all are reported, in one pass.
    @Test func everyProblemIsReportedAtOnce() throws {
        let dag = Graphs.dag(
            ["a", "b", "c", "a", "bad key", "d"],
            edges: [("a", "b"), ("b", "c"), ("c", "a"), ("c", "nowhere"), ("d", "d"), ("a", "b")])
        let failure = try #require(Graphs.failure(dag))
        #expect(failure.codes == [.duplicateKey, .invalidKeyCharacter, .unknownTask, .selfLoop, .duplicateEdge, .cycle])
        #expect(failure.totalIssueCount == 6)
        #expect(failure.description.hasPrefix("the graph is invalid (6 problems):\n  - duplicate_key: "))
    }

    @Test func reportingIsCappedButCounted() throws {
        let edges = (0..<500).map { ("a", "missing-\($0)") }
        let failure = try #require(Graphs.failure(Graphs.dag(["a"], edges: edges), limits: ValidationLimits(maxReportedIssues: 10)))
        #expect(failure.issues.count == 10)
        #expect(failure.totalIssueCount == 500)
        #expect(failure.description.hasSuffix("… and 490 more"))
    }

    @Test func keyTableInternsAndFindsManyKeys() {
        var table = KeyTable(capacity: 50_000)
        for i in 0..<50_000 { #expect(table.insert(TaskKey("key-\(i)")) == (Int32(i), true)) }
        #expect(table.insert("key-123") == (123, false))
        #expect(table.find("key-49999") == 49_999)
        #expect(table.find("key-50000") == -1)
        #expect(table.find(TaskKey("a-much-longer-key-than-sixteen-bytes")) == -1)
        let edges = [Edge("key-1", "key-2"), Edge("nope", "key-3")]
        let resolved = table.resolve(edges)
        #expect(resolved.sources == [1, -1])
        #expect(resolved.targets == [2, 3])
        // Batched resolution agrees with one-by-one lookups across many batches, hits and misses.
        var rng = SplitMix64(seed: 7)
        let many = (0..<20_000).map { _ in Edge(TaskKey("key-\(rng.next(below: 60_000))"), TaskKey("key-\(rng.next(below: 60_000))")) }
        let batched = table.resolve(many)
        #expect(batched.sources == many.map { table.find($0.from) })
        #expect(batched.targets == many.map { table.find($0.to) })
    }
}
