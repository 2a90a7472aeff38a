public import Logging

/// Metadata bound to the current task (and the tasks it starts) for every log line written
/// inside it: the gRPC edge binds `trace_id` around each call, so a line logged deep in the
/// application carries the trace id of the request that caused it without every call site
/// passing it along.
///
/// Unstructured `Task {}`s inherit task-locals, so work a handler spawns keeps the context;
/// `Task.detached` and other threads do not.
public enum LogContext {
    /// The W3C trace id of the call being handled (bound by `LogContextInterceptor`). A plain
    /// string, so binding it costs no allocation per call; the metadata is built only for lines
    /// that are actually written.
    @TaskLocal public static var traceID: String?
    /// Further metadata bound with `with(_:_:)`.
    @TaskLocal public static var metadata: Logger.Metadata = [:]

    /// The provider given to `LoggingSystem.bootstrap`, which adds the bound context to every line.
    public static let provider = Logger.MetadataProvider {
        guard let traceID else { return metadata }
        var merged = metadata
        if merged[LogKeys.traceID] == nil { merged[LogKeys.traceID] = .string(traceID) }
        return merged
    }

    /// Runs `body` with `extra` added to the current task's log metadata.
    public static func with<T>(_ extra: Logger.Metadata, _ body: () async throws -> T) async rethrows -> T {
        var merged = metadata
        merged.merge(extra) { _, new in new }
        return try await $metadata.withValue(merged, operation: body)
    }
}

/// The metadata keys every component uses for the ids that tie log lines to workflows, so the
/// lines of one workflow, task, executor or trace can be found with one filter.
public enum LogKeys {
    public static let traceID = "trace_id"
    public static let workflowID = "workflow_id"
    public static let taskID = "task_id"
    public static let executorID = "executor_id"
}
