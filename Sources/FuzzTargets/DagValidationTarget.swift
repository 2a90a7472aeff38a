import Logging
import OrchestratorAPI
import OrchestratorApp
import OrchestratorDomain
import OrchestratorGRPC

/// DAG validation from untrusted input, along the paths the server and orchctl take.
///
/// Input: byte 0 picks the path and the validation limits, the rest is the document:
/// - an `orchestrator.v1.Dag` message → `DecodedDag` → `DagValidator` → `GraphAnalysis`;
/// - an `orchestrator.v1.Query` message → `WorkflowsPlanningHandler.plan` (what PlanWorkflow and
///   SubmitQuery run: decoding, planner choice, explicit/catalog/delegated planning, validation, the
///   response);
/// - an orchctl DAG file (`DagFileJSON`) → the same as a Dag message;
/// - a Dag built field by field from the bytes (`build`): protobuf's length prefixes make a
///   mutated message mostly unreadable, so this path is how extreme numbers (an int64 timeout at its
///   maximum, a NaN cost) and dense dependency patterns reach the decoder and validator.
///
/// Checked besides "never crashes" (libFuzzer's -timeout and -rss_limit_mb bound time and memory):
/// a validated graph's topological order and levels respect every edge, its analysis encodes, and
/// it survives the trip to the API form and back unchanged (what GetDag returns reads back as the
/// graph that was stored).
public enum DagValidationTarget {
    public static let name = "FuzzDagValidation"

    /// The defaults the server uses, and tight ones so that small inputs reach every limit.
    static let limitChoices: [ValidationLimits] = [
        .default,
        ValidationLimits(maxTasks: 6, maxEdges: 8, maxFanIn: 2, maxFanOut: 3, maxKeyLength: 8,
                         maxMetadataBytesPerTask: 24, maxReportedIssues: 3),
    ]

    static let catalogPath: String = {
        // Sources/FuzzTargets/DagValidationTarget.swift → the repository root, wherever it runs from.
        var parts = "\(#filePath)".split(separator: "/", omittingEmptySubsequences: false)
        parts.removeLast(3)
        return parts.joined(separator: "/") + "/" + PlannerSetup.defaultCatalogPath
    }()

    static let handlers: [WorkflowsPlanningHandler] = {
        let logger = Logger(label: "fuzz", factory: { _ in SwiftLogNoOpLogHandler() })
        let (registry, catalog) = (try? PlannerSetup.standard(catalogPath: catalogPath, logger: logger))
            ?? (PlannerRegistry([ExplicitPlanner(), DelegatedPlanner()]), nil)
        return limitChoices.map { WorkflowsPlanningHandler(registry: registry, catalog: catalog, limits: $0, logger: logger) }
    }()

    public static func run(_ data: [UInt8]) {
        var input = FuzzInput(data)
        let selector = Int(input.byte())
        let choice = (selector / 4) % limitChoices.count
        if selector % 4 == 3 {
            validate(build(&input), limits: limitChoices[choice])
            return
        }
        let document = input.rest()
        switch selector % 4 {
        case 0:
            guard let proto = try? Orchestrator_V1_Dag(serializedBytes: document) else { return }
            validate(proto, limits: limitChoices[choice])
        case 1:
            guard let proto = try? Orchestrator_V1_Query(serializedBytes: document) else { return }
            plan(proto, handler: handlers[choice])
        default:
            guard let proto = try? DagFileJSON.decode(document, source: "fuzz.json") else { return }
            validate(proto, limits: limitChoices[choice])
        }
    }

    /// A graph of up to 15 tasks: keys `t0`… (or arbitrary short strings), dependencies by index
    /// (so most resolve), and each optional field present or not, with raw 8-byte numbers.
    static func build(_ input: inout FuzzInput) -> Orchestrator_V1_Dag {
        var dag = Orchestrator_V1_Dag()
        let count = Int(input.byte() % 16)
        for position in 0..<count {
            var task = Orchestrator_V1_TaskSpec()
            let fields = input.byte()
            task.key = fields & 1 == 0 ? "t\(position)" : input.string(maxLength: 10)
            for _ in 0..<Int(input.byte() % 4) { task.dependsOn.append("t\(Int(input.byte()) % max(count, 1))") }
            if fields & 2 != 0 { task.estimatedCost = input.double() }
            if fields & 4 != 0 { task.priority = input.int32() }
            if fields & 8 != 0 { task.timeouts = Orchestrator_V1_Timeouts(startToCloseMs: input.int64(), leaseTtlMs: input.int64()) }
            if fields & 16 != 0 {
                task.retry = Orchestrator_V1_RetryPolicy(
                    maxAttempts: input.int32(), initialBackoffMs: input.int64(), maxBackoffMs: input.int64(),
                    backoffMultiplier: input.double(), jitter: input.double())
            }
            if fields & 32 != 0 {
                var custom: [String: Double] = [:]
                for _ in 0..<Int(input.byte() % 3) { custom[input.string(maxLength: 6)] = input.double() }
                task.resources = Orchestrator_V1_Resources(cpuCores: input.double(), memoryMb: input.int64(), gpus: input.int32(), custom: custom)
            }
            if fields & 64 != 0 {
                for _ in 0..<Int(input.byte() % 3) { task.labels[input.string(maxLength: 12)] = input.string(maxLength: 20) }
            }
            if fields & 128 != 0 { task.payload = input.take(Int(input.byte() % 16)) }
            dag.tasks.append(task)
        }
        return dag
    }

    static func validate(_ proto: Orchestrator_V1_Dag, limits: ValidationLimits) {
        var problems = ProblemList()
        let decoded = DecodedDag(proto: proto, problems: &problems)
        guard let graph = try? DagValidator(limits: limits).validate(decoded.dag) else { return }
        check(graph, limits: limits)
        // A string holding U+0000 (possible only in a DAG file, as "\u0000") cannot be encoded:
        // protobuf-c strings are C strings. orchctl then reports the encoding error.
        guard problems.isEmpty, !containsNUL(proto) else { return }
        // The API form and back: what the server stores is what it later returns.
        let stored = Orchestrator_V1_Dag(decoded.dag, payloads: decoded.payloads)
        let bytes: [UInt8]
        do {
            bytes = try stored.serializedBytes()
        } catch {
            fuzzCheck(false, "a validated graph does not encode: \(error)")
            return
        }
        guard let reread = try? Orchestrator_V1_Dag(serializedBytes: bytes) else {
            fuzzCheck(false, "a validated graph's encoding does not decode")
            return
        }
        var again = ProblemList()
        let redecoded = DecodedDag(proto: reread, problems: &again)
        fuzzCheck(again.isEmpty, "the stored form of a valid graph has problems: \(again.problems.map(\.message))")
        fuzzCheck(redecoded.dag == decoded.dag, "a valid graph changed on its way to the API form and back")
    }

    static func plan(_ proto: Orchestrator_V1_Query, handler: WorkflowsPlanningHandler) {
        guard let planned = try? handler.plan(proto) else { return }
        let graph: ValidatedDag
        do {
            graph = try DagValidator(limits: handler.limits).validate(planned.result.dag)
        } catch {
            fuzzCheck(false, "a planned graph fails validation: \(error)")
            return
        }
        check(graph, limits: handler.limits)
        let response = planned.response(createdAt: 0)
        fuzzCheck((try? response.serializedBytes()) != nil, "a PlanWorkflow response does not encode")
    }

    static func containsNUL(_ dag: Orchestrator_V1_Dag) -> Bool {
        dag.tasks.contains { task in
            let strings = [task.key, task.name, task.description, task.rationale] + task.dependsOn + task.requiredCapabilities
                + task.inputs + task.outputs + Array(task.labels.keys) + Array(task.labels.values)
                + Array(task.resources?.custom.keys ?? [:].keys)
            return strings.contains { $0.utf8.contains(0) }
        }
    }

    /// Order, levels and analysis of a valid graph.
    static func check(_ graph: ValidatedDag, limits: ValidationLimits) {
        let index = graph.index
        fuzzCheck(graph.topologicalOrder.count == index.taskCount, "the topological order misses tasks")
        var position = [Int](repeating: -1, count: index.taskCount)
        for (at, id) in graph.topologicalOrder.enumerated() { position[Int(id)] = at }
        let analysis = GraphAnalysis(graph)
        for u in 0..<index.taskCount {
            for e in Int(index.successorOffsets[u])..<Int(index.successorOffsets[u + 1]) {
                let v = Int(index.successorTargets[e])
                fuzzCheck(position[u] < position[v], "edge \(index.keys[u]) → \(index.keys[v]) runs against the topological order")
                fuzzCheck(analysis.levelOf[u] < analysis.levelOf[v], "edge \(index.keys[u]) → \(index.keys[v]) does not go down a level")
            }
        }
        fuzzCheck(index.taskCount <= limits.maxTasks, "\(index.taskCount) tasks passed a limit of \(limits.maxTasks)")
        fuzzCheck((try? Orchestrator_V1_DagAnalysis(analysis).serializedBytes()) != nil, "an analysis does not encode")
    }
}
