import Foundation
import OrchestratorApp
import OrchestratorDomain
import PostgresClient
import Testing

@testable import OrchestratorStore

/// The fast `TaskSpec` reader must agree with `JSONDecoder` on everything the store writes, in the
/// form PostgreSQL's jsonb prints it, and step aside (nil) for anything else.
@Suite("TaskSpecJSON")
struct TaskSpecJSONTests {
    static let specs: [TaskSpec] = [
        TaskSpec(key: "a"),
        TaskSpec(
            key: "fetch-3", name: "Fetch \"quoted\" \\ back/slash", requiredCapabilities: ["gpu", "π-calc", ""],
            inputs: ["x"], outputs: ["y", "z"], complexity: .high, estimatedCost: 0.1, priority: -7,
            resources: ResourceNeeds(cpuMillis: 250, memoryMiB: 1024, gpus: 1, custom: ["tokens": 40_000, "licences": -1]),
            timeoutSeconds: 90, heartbeatTimeoutSeconds: 0,
            retry: RetryPolicy(maxAttempts: 5, initialBackoffMillis: 10, maxBackoffMillis: 9_000_000_000, backoffMultiplier: 1.5),
            labels: ["team": "données", "emoji": "🚀", "ctl": "tab\there\nnewline\u{1}"], metadata: ["k": "'; DROP TABLE tasks; --"],
            rationale: "because 𝄞", description: "", retryJitter: 0.25),
        TaskSpec(key: "big", estimatedCost: 1e300, priority: Int.max, retry: RetryPolicy(backoffMultiplier: 1e-7)),
    ]

    @Test func agreesWithJSONDecoderOnEncoderOutput() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        // jsonb cannot hold U+0000; JSON text can.
        for spec in Self.specs + [TaskSpec(key: "nul", rationale: "a\u{0}b")] {
            let text = String(decoding: try encoder.encode(spec), as: UTF8.self)
            #expect(TaskSpecJSON.decode(text) == spec)
            #expect(try JSONDecoder().decode(TaskSpec.self, from: Data(text.utf8)) == spec)
        }
    }

    @Test func agreesWithJSONDecoderOnWhatJsonbPrints() async throws {
        try await TestDatabase.withStore { _, pool in
            let encoder = JSONEncoder()
            for spec in Self.specs {
                let stored = String(decoding: try encoder.encode(spec), as: UTF8.self)
                let printed = try await pool.withConnection { session in
                    try await session.query("SELECT $1::jsonb::text AS t", [stored])[0].decode(String.self, column: "t")
                }
                #expect(printed != stored)  // jsonb reorders keys and adds spaces
                #expect(TaskSpecJSON.decode(printed) == spec)
                #expect(try JSONDecoder().decode(TaskSpec.self, from: Data(printed.utf8)) == spec)
            }
        }
    }

    @Test func stepsAsideForAnythingElse() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let good = String(decoding: try encoder.encode(TaskSpec(key: "a", timeoutSeconds: 5)), as: UTF8.self)
        #expect(TaskSpecJSON.decode(good) != nil)
        let variants = [
            String(good.dropLast()),  // truncated
            good + "x",  // trailing garbage
            good.replacingOccurrences(of: "\"priority\":0", with: "\"priority\":0.5"),  // fraction for Int
            good.replacingOccurrences(of: "\"priority\":0", with: "\"priority\":1e2"),  // exponent for Int
            good.replacingOccurrences(of: "\"priority\":0", with: "\"priority\":99999999999999999999"),  // overflow
            good.replacingOccurrences(of: "\"priority\":0", with: "\"priority\":\"0\""),  // wrong type
            good.replacingOccurrences(of: "\"priority\":0,", with: ""),  // missing required key
            good.replacingOccurrences(of: "\"timeoutSeconds\":5", with: "\"timeoutSeconds\":true"),
            good.replacingOccurrences(of: "\"complexity\":\"medium\"", with: "\"complexity\":\"huge\""),
            good.replacingOccurrences(of: "\"key\":\"a\"", with: "\"key\":\"\\ud800\""),  // lone surrogate
            good.replacingOccurrences(of: "\"key\":\"a\"", with: "\"key\":\"a\u{1}\""),  // raw control character
            good.replacingOccurrences(of: "\"estimatedCost\":1", with: "\"estimatedCost\":1e999"),  // not finite
            "[]", "", "null", String(repeating: "[", count: 100) + String(repeating: "]", count: 100),
        ]
        for text in variants {
            #expect(TaskSpecJSON.decode(text) == nil, "\(text)")
        }
        // Unknown keys are ignored, as by the synthesized decoder; a null optional is nil.
        let extra = good.replacingOccurrences(of: "{", with: "{\"future\":[1,{\"x\":null}],", options: .anchored)
        #expect(TaskSpecJSON.decode(extra) == TaskSpec(key: "a", timeoutSeconds: 5))
        let nulled = good.replacingOccurrences(of: "\"timeoutSeconds\":5", with: "\"timeoutSeconds\":null")
        #expect(TaskSpecJSON.decode(nulled) == TaskSpec(key: "a"))
    }
}

@Suite("ActorJSON")
struct ActorJSONTests {
    @Test func writtenTextDecodesToTheSameActor() throws {
        let actors = [
            OrchestratorApp.Actor(subject: "svc-1", role: "executor", tenant: "acme"),
            OrchestratorApp.Actor(subject: "quote\" back\\slash /", role: "ctl\n\r\t\u{1}\u{1f}", tenant: "données 🚀 \u{7f}"),
            OrchestratorApp.Actor(subject: "", role: "", tenant: ""),
        ]
        for actor in actors {
            let text = try ActorJSON.text(actor)
            #expect(try JSONDecoder().decode(ActorJSON.self, from: Data(text.utf8)).actor == actor)
        }
    }
}
