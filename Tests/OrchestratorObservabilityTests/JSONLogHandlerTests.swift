import Foundation
import Logging
@testable import OrchestratorObservability
import Testing

@Suite("JSON log handler")
struct JSONLogHandlerTests {
    /// Decodes one line as a JSON object.
    func decode(_ bytes: [UInt8]) throws -> [String: Any] {
        #expect(bytes.last == UInt8(ascii: "\n"))
        #expect(bytes.dropLast().contains(UInt8(ascii: "\n")) == false)
        let object = try JSONSerialization.jsonObject(with: Data(bytes))
        return try #require(object as? [String: Any])
    }

    @Test func lineHasTimeLevelLabelMessageAndFlattenedMetadata() throws {
        let line = JSONLogHandler.line(
            time: "2026-11-26T01:45:08.123Z", level: .info, label: "orchestrator.dispatch", message: "task leased",
            metadata: [
                "workflow_id": "wf_1", "task_id": .stringConvertible(42), "nested": ["inner": "x", "deeper": ["leaf": "y"]],
                "list": ["a", "b"], "message": "shadowed",
            ])
        let object = try decode(line)
        #expect(object["time"] as? String == "2026-11-26T01:45:08.123Z")
        #expect(object["level"] as? String == "info")
        #expect(object["label"] as? String == "orchestrator.dispatch")
        #expect(object["message"] as? String == "task leased")
        #expect(object["workflow_id"] as? String == "wf_1")
        #expect(object["task_id"] as? String == "42")
        #expect(object["nested.inner"] as? String == "x")
        #expect(object["nested.deeper.leaf"] as? String == "y")
        #expect(object["list"] as? [String] == ["a", "b"])
        #expect(object["meta_message"] as? String == "shadowed")
    }

    @Test func controlCharactersQuotesAndUnicodeSurviveARoundTrip() throws {
        let nasty = "tab\there \"quoted\" back\\slash newline\nbell\u{07} del\u{7f} crlf\r\n ünïcødé 🚀"
        let object = try decode(JSONLogHandler.line(time: "t", level: .error, label: "l", message: nasty, metadata: ["k": .string(nasty)]))
        #expect(object["message"] as? String == nasty)
        #expect(object["k"] as? String == nasty)
    }

    @Test func timestampsAreRFC3339InUTCWithMilliseconds() {
        #expect(RFC3339.format(seconds: 0, milliseconds: 7) == "1970-01-01T00:00:00.007Z")
        #expect(RFC3339.format(seconds: 1_795_657_508, milliseconds: 123) == "2026-11-26T01:45:08.123Z")
        let now = RFC3339.now()
        #expect(now.count == 24 && now.hasSuffix("Z"))
    }

    @Test func levelFollowsTheSharedControlAtRuntimeUnlessOverridden() {
        let control = LogLevelControl(.info)
        var handler = JSONLogHandler(label: "x", control: control)
        #expect(handler.logLevel == .info)
        control.level = .debug
        #expect(handler.logLevel == .debug)
        control.reset()
        #expect(handler.logLevel == .info)
        handler.logLevel = .error
        control.level = .trace
        #expect(handler.logLevel == .error)
    }

    @Test func handlerMergesLoggerProviderAndCallMetadataInThatOrder() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("obs-log-\(UUID().uuidString).jsonl").path
        let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        #expect(descriptor >= 0)
        defer {
            close(descriptor)
            unlink(path)
        }
        let control = LogLevelControl(.info)
        var logger = Logger(label: "test") { label in
            JSONLogHandler(label: label, control: control, writer: LogLineWriter(descriptor: descriptor), metadataProvider: LogContext.provider)
        }
        logger[metadataKey: "executor_id"] = "ex-1"
        logger[metadataKey: "trace_id"] = "from-logger"
        let captured = logger
        await LogContext.with(["trace_id": "from-context", "workflow_id": "wf_ctx"]) {
            captured.info("inside", metadata: ["workflow_id": "wf_call", "task_id": "t1"])
        }
        LogContext.$traceID.withValue("bound-by-interceptor") {
            captured.info("in a call")
        }
        logger.debug("filtered out at info")
        control.level = .debug
        logger.debug("visible at debug")
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map { Array($0.utf8) + [0x0a] }
        #expect(lines.count == 3)
        let first = try decode(lines[0])
        #expect(first["message"] as? String == "inside")
        #expect(first["executor_id"] as? String == "ex-1")
        #expect(first["trace_id"] as? String == "from-context")
        #expect(first["workflow_id"] as? String == "wf_call")
        #expect(first["task_id"] as? String == "t1")
        let inCall = try decode(lines[1])
        #expect(inCall["trace_id"] as? String == "bound-by-interceptor")
        let second = try decode(lines[2])
        #expect(second["message"] as? String == "visible at debug")
        #expect(second["level"] as? String == "debug")
        #expect(second["trace_id"] as? String == "from-logger")
    }
}
