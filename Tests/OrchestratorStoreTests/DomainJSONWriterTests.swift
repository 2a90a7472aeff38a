import Foundation
import OrchestratorApp
import OrchestratorDomain
import Testing

@testable import OrchestratorStore

/// The direct writer must produce the documents `JSONEncoder` produces for the same values (same
/// keys, same values; byte order of keys and number spelling may differ), read back equal by
/// `JSONDecoder` and the claim path's `TaskSpecJSON`, and refuse what `JSONEncoder` refuses.
@Suite("DomainJSONWriter")
struct DomainJSONWriterTests {
    static let dags: [Dag] = [
        Dag(),
        Dag(tasks: TaskSpecJSONTests.specs + [TaskSpec(key: "nul", rationale: "a\u{0}b\u{1f}\u{7f}\u{8}\u{c}")],
            edges: [Edge("a", "fetch-3"), Edge("fetch-3", "big"), Edge("a", "big")]),
        Dag(tasks: [
            TaskSpec(key: "neg", estimatedCost: -0.0, priority: Int.min, resources: ResourceNeeds(cpuMillis: Int.max, custom: ["": 0])),
            TaskSpec(key: "tiny", estimatedCost: .leastNonzeroMagnitude, retry: RetryPolicy(backoffMultiplier: 1.7976931348623157e308), retryJitter: 1e-5),
            TaskSpec(key: "int-like", estimatedCost: 1e16, priority: 1_000_000, labels: ["B": "1", "a": "2", "10": "x", "9": "y"]),
        ]),
    ]

    static var queries: [Query] {
        [
            Query(),
            Query(text: "summarise \"this\" \\ \n", goal: Goal(artifacts: ["report", "é"]), providedInputs: ["url": "https://x/y?z=1"],
                  explicitGraph: dags[1], priority: -4, labels: ["team": "données"],
                  constraints: PlanningConstraints(maxTotalCost: 12.5, maxTasks: 40, excludedCapabilities: ["gpu", "net", "a"]),
                  plannerHint: "catalog"),
            Query(text: "t", explicitGraph: Dag(), constraints: PlanningConstraints(maxTasks: 0)),
        ]
    }

    /// Both documents parsed into Foundation objects: equal iff same keys and values. A query's
    /// excluded capabilities are a Set, which JSONEncoder writes in its iteration order and the
    /// writer sorted: they are compared sorted.
    private func sameDocument(_ written: [UInt8], _ encoded: Data) throws -> Bool {
        func parse(_ data: Data) throws -> NSDictionary {
            let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
            guard var constraints = object["constraints"] as? [String: Any],
                let excluded = constraints["excludedCapabilities"] as? [String]
            else { return object as NSDictionary }
            constraints["excludedCapabilities"] = excluded.sorted()
            var normalised = object
            normalised["constraints"] = constraints
            return normalised as NSDictionary
        }
        return try parse(Data(written)).isEqual(try parse(encoded))
    }

    /// Numbers are spelt as `description` spells them without a trailing ".0" (whole numbers take
    /// a faster path that must agree).
    @Test func numberSpellings() throws {
        let cases: [(Double, String)] = [
            (1, "1"), (-3, "-3"), (0, "0"), (-0.0, "-0"), (2.5, "2.5"), (1e15 - 1, "999999999999999"),
            (1e15, "1000000000000000"), (1e16, "1e+16"), (-1e16, "-1e+16"), (0.1, "0.1"), (.leastNonzeroMagnitude, "5e-324"),
        ]
        for (value, spelling) in cases {
            var writer = JSONBytes(capacity: 32)
            try writer.double(value)
            #expect(String(decoding: writer.bytes, as: UTF8.self) == spelling, "\(value)")
        }
    }

    @Test func dagsMatchJSONEncoderAndReadBackEqual() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        for dag in Self.dags {
            let written = try DomainJSONWriter.dag(dag)
            #expect(try sameDocument(written, try encoder.encode(dag)), "\(String(decoding: written, as: UTF8.self))")
            #expect(try JSONDecoder().decode(Dag.self, from: Data(written)) == dag)
        }
    }

    @Test func tasksReadBackThroughTheClaimReader() throws {
        for spec in Self.dags.flatMap(\.tasks) {
            var writer = JSONBytes(capacity: 0)
            try writer.taskSpec(spec)
            #expect(TaskSpecJSON.decode(String(decoding: writer.bytes, as: UTF8.self)) == spec)
        }
    }

    @Test func queriesMatchJSONEncoderAndReadBackEqual() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        for query in Self.queries {
            let written = try DomainJSONWriter.query(query)
            #expect(try sameDocument(written, try encoder.encode(query)), "\(String(decoding: written, as: UTF8.self))")
            #expect(try JSONDecoder().decode(Query.self, from: Data(written)) == query)
        }
        let withSet = Self.queries[1]
        let written = String(decoding: try DomainJSONWriter.query(withSet), as: UTF8.self)
        #expect(written.hasPrefix("{\"constraints\":{\"excludedCapabilities\":[\"a\",\"gpu\",\"net\"]"))
    }

    @Test func integersAtTheLimits() {
        for value in [0, 1, -1, 9, 10, 99, 100, Int.max, Int.min, 1_234_567_890, -987_654_321] {
            var writer = JSONBytes(capacity: 0)
            writer.int(value)
            #expect(String(decoding: writer.bytes, as: UTF8.self) == String(value))
        }
    }

    @Test func nonFiniteNumbersAreRefusedLikeJSONEncoder() {
        for value in [Double.nan, .infinity, -.infinity] {
            let dag = Dag(tasks: [TaskSpec(key: "x", estimatedCost: value)])
            #expect(throws: EncodingError.self) { try DomainJSONWriter.dag(dag) }
            #expect(throws: EncodingError.self) { try JSONEncoder().encode(dag) }
            let query = Query(constraints: PlanningConstraints(maxTotalCost: value))
            #expect(throws: EncodingError.self) { try DomainJSONWriter.query(query) }
        }
    }
}
