import OrchestratorAPI
import Testing

@testable import OrchestratorGRPC

/// orchctl's DAG files. Found by black-box testing: out-of-range numbers wrapped (a priority of
/// 2^31 became -2^31, highest turned lowest), wrong types and unknown fields were dropped silently.
@Suite("DAG files")
struct DagFileJSONTests {
    func decode(_ text: String) throws -> Orchestrator_V1_Dag {
        try DagFileJSON.decode(Array(text.utf8), source: "f.json")
    }

    func error(_ text: String) -> String? {
        do {
            _ = try decode(text)
            return nil
        } catch {
            return "\(error)"
        }
    }

    @Test func everyDocumentedFieldIsRead() throws {
        let dag = try decode("""
            {"tasks": [{"key": "a", "name": "A", "description": "d", "required_capabilities": ["echo"], "inputs": ["i"],
                        "outputs": ["o"], "estimated_cost": 2.5, "priority": -2147483648, "labels": {"k": "v"},
                        "payload": {"x": 1}, "retry": {"max_attempts": 5, "initial_backoff_ms": 200, "max_backoff_ms": 9000,
                        "backoff_multiplier": 1.5, "jitter": 0.2}, "timeouts": {"start_to_close_ms": 60000, "lease_ttl_ms": 2000}},
                       {"key": "b", "depends_on": ["a"], "priority": 2147483647, "payload": "text", "estimated_cost": 0}]}
            """)
        let a = dag.tasks[0]
        #expect(a.priority == Int32.min && dag.tasks[1].priority == Int32.max)
        #expect(a.estimatedCost == 2.5 && dag.tasks[1].estimatedCost == 0)
        #expect(a.labels == ["k": "v"] && a.payload == Array(#"{"x":1}"#.utf8) && dag.tasks[1].payload == Array("text".utf8))
        #expect(a.retry?.maxAttempts == 5 && a.retry?.initialBackoffMs == 200 && a.retry?.maxBackoffMs == 9000)
        #expect(a.retry?.backoffMultiplier == 1.5 && a.retry?.jitter == 0.2)
        #expect(a.timeouts?.startToCloseMs == 60000 && a.timeouts?.leaseTtlMs == 2000)
        #expect(dag.tasks[1].dependsOn == ["a"])
    }

    @Test(arguments: [
        (#"{"tasks":[{"key":"a","priority":2147483648}]}"#, #"f.json: tasks[0]: "priority" is 2147483648, out of its range -2147483648...2147483647"#),
        (#"{"tasks":[{"key":"a","priority":-2147483649}]}"#, #""priority" is -2147483649, out of its range"#),
        (#"{"tasks":[{"key":"a","priority":1e20}]}"#, #""priority" is 1e+20, out of its range"#),
        (#"{"tasks":[{"key":"a","priority":1.5}]}"#, #""priority" must be a whole number, got 1.5"#),
        (#"{"tasks":[{"key":"a","priority":"high"}]}"#, #""priority" must be a number"#),
        (#"{"tasks":[{"key":"a","priority":true}]}"#, #""priority" must be a number"#),
        (#"{"tasks":[{"key":"a","retry":{"max_attempts":99999999999}}]}"#, #"tasks[0].retry: "max_attempts" is 99999999999, out of its range"#),
        (#"{"tasks":[{"key":"a","retry":{"initial_backoff_ms":9223372036854775808}}]}"#, #""initial_backoff_ms" is 9223372036854775808, out of"#),
        (#"{"tasks":[{"key":"a","retry":{"initial_backoff_ms":1.7}}]}"#, #""initial_backoff_ms" must be a whole number"#),
        (#"{"tasks":[{"key":"a","labels":{"k":5,"j":"ok"}}]}"#, #""labels" must be an object of string values"#),
        (#"{"tasks":[{"key":"a","timeouts":{"lease_ttl_ms":"abc"}}]}"#, #"tasks[0].timeouts: "lease_ttl_ms" must be a number"#),
        (#"{"tasks":[{"key":"a","timeouts":[]}]}"#, #""timeouts" must be an object"#),
        (#"{"tasks":[{"key":"a","prioirty":3}]}"#, #"tasks[0]: unknown field "prioirty" (known: "#),
        (#"{"tasks":[{"key":"a","retry":{"attempts":3}}]}"#, #"tasks[0].retry: unknown field "attempts""#),
        (#"{"tasks":[],"version":2}"#, #"f.json: unknown field "version""#),
        (#"{"tasks":[1]}"#, #"tasks[0]: expected a JSON object"#),
        (#"{"tasks":[{"key":5}]}"#, #""key" must be a string"#),
        (#"{"tasks":[{"name":"x"}]}"#, #""key" (a string) is required"#),
        (#"{"graph":[]}"#, #"f.json: expected a JSON object with a "tasks" array"#),
        ("not json", "f.json: not valid JSON"),
        (#"{"tasks":[{"key":"a\u0000b"}]}"#, #"tasks[0]: "key" contains the character U+0000"#),
        (#"{"tasks":[{"key":"a","labels":{"k":"v\u0000"}}]}"#, #""labels" contains the character U+0000"#),
        (#"{"tasks":[{"key":"a","estimated_cost":1e400}]}"#, "f.json: not valid JSON"),
    ])
    func badValuesAreRefusedNotWrappedOrDropped(file: String, expected: String) {
        let message = error(file)
        #expect(message?.contains(expected) == true, "\(message ?? "accepted")")
    }

    /// Found by black-box testing: a file that is not JSON said only "The data is not in the correct
    /// format", not where.
    @Test(arguments: [
        ("{\"tasks\": [\n  {\"key\": \"a\"},\n  {\"key\": b}\n]}", "f.json: not valid JSON: invalid value at line 3, column 11"),
        ("tasks: []", "f.json: not valid JSON: invalid value at line 1, column 2"),
        ("{\"tasks\": [\n", "f.json: not valid JSON: unexpected end of file"),
    ])
    func syntaxErrorsSayWhere(file: String, expected: String) {
        let message = error(file)
        #expect(message?.hasPrefix(expected) == true, "\(message ?? "accepted")")
    }

    /// Foundation's parser accepts a comma closing an array or object, which JSON does not allow
    /// (found by black-box testing: a file orchctl read "strictly" broke in other tools). Commas
    /// inside strings are text.
    @Test(arguments: [
        ("{\"tasks\": [{\"key\": \"a\",}]}", "f.json: not valid JSON: trailing comma before '}' at line 1, column 23"),
        ("{\"tasks\": [\n  {\"key\": \"a\"},\n]}", "f.json: not valid JSON: trailing comma before ']' at line 2, column 15"),
        ("{\"tasks\": [],\n}", "f.json: not valid JSON: trailing comma before '}' at line 1, column 13"),
    ])
    func trailingCommasAreRefusedWithWhereTheyAre(file: String, expected: String) {
        #expect(error(file) == expected)
    }

    @Test func commasInStringsAreText() throws {
        let dag = try decode(#"{"tasks": [{"key": "a,]", "labels": {"k,}": "v\",]"}}]}"#)
        #expect(dag.tasks.map(\.key) == ["a,]"])
        #expect(JSONSyntaxError.trailingComma(in: Array(#"["\\", 1]"#.utf8)) == nil)
    }

    /// JSONSerialization kept the last of two equal keys: a second "depends_on" silently dropped
    /// the first one's edges.
    @Test(arguments: [
        (#"{"tasks": [{"key": "a"}, {"key": "b", "depends_on": ["a"], "depends_on": []}]}"#, #"f.json: tasks[1]: field "depends_on" appears twice"#),
        (#"{"tasks": [], "tasks": [{"key": "a"}]}"#, #"f.json: field "tasks" appears twice"#),
        (#"{"tasks": [{"key": "a", "retry": {"jitter": 0.1, "jitter": 0.2}}]}"#, #"f.json: tasks[0].retry: field "jitter" appears twice"#),
        (#"{"tasks": [{"key": "a", "payload": {"x": 1, "\u0078": 2}}]}"#, #"f.json: tasks[0].payload: field "x" appears twice"#),
    ])
    func duplicateKeysAreRefusedWithWhereTheyAre(file: String, expected: String) {
        let message = error(file)
        #expect(message?.contains(expected) == true, "\(message ?? "accepted")")
    }

    @Test func equalKeysInDifferentObjectsAreNoDuplicates() throws {
        let dag = try decode(#"{"tasks": [{"key": "a", "labels": {"key": "x"}}, {"key": "b", "labels": {"key": "y", "k\"ey": "z"}}]}"#)
        #expect(dag.tasks.map(\.key) == ["a", "b"])
        #expect(dag.tasks[1].labels == ["key": "y", "k\"ey": "z"])
    }
}

@Suite("Duplicate JSON keys")
struct JSONDuplicateKeysTests {
    func first(_ text: String) -> JSONDuplicateKeys.Duplicate? { JSONDuplicateKeys.first(in: Array(text.utf8)) }

    @Test func findsTheFirstRepeatedKeyWithItsPath() {
        #expect(first(#"{"a": 1, "b": 2}"#) == nil)
        #expect(first(#"{"a": 1, "a": 2}"#) == .init(path: "", key: "a"))
        #expect(first(#"{"a": [{"x": 1}, {"y": 1, "z": {"q": [1, {"w": 0, "w": 1}]}}]}"#) == .init(path: "a[1].z.q[1]", key: "w"))
        // Arrays of strings and string values that look like keys are not keys.
        #expect(first(#"{"a": ["a", "a"], "b": "a", "c": {"a": "b"}}"#) == nil)
    }

    @Test func keysCompareAfterEscapesAreDecoded() {
        #expect(first(#"{"é": 1, "\u00e9": 2}"#) == .init(path: "", key: "é"))
        #expect(first(#"{"😀": 1, "\ud83d\ude00": 2}"#) == .init(path: "", key: "😀"))
        #expect(first(#"{"a\"b": 1, "a\u0022b": 2}"#) == .init(path: "", key: "a\"b"))
        #expect(first(#"{"a\\": 1, "a": 2}"#) == nil)
        #expect(first(#"{"tab\t": 1, "tab\u0009": 2}"#) == .init(path: "", key: "tab\t"))
    }
}
