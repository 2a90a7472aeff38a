import OrchestratorDomain

/// What every assignment of a task carries before any upstream result: its own input and the
/// query's inputs. When those alone exceed the largest assignment handed to executors
/// (`DispatchConfiguration.maxAssignmentBytes`), the task could never be dispatched — it would
/// fail `assignment_too_large` at its first lease, blamed on results it does not have — so the
/// submission (or DAG update) is refused up front, naming the tasks and the sizes.
public struct AssignmentBudget: Sendable {
    /// nil: no limit.
    public let maxAssignmentBytes: Int?

    public init(maxAssignmentBytes: Int?) {
        self.maxAssignmentBytes = maxAssignmentBytes
    }

    /// Throws INVALID_ARGUMENT when some task of `tasks` cannot fit.
    public func check(tasks: [TaskSpec], payloads: [TaskKey: [UInt8]], inputs: [String: String]) throws(AppError) {
        guard let limit = maxAssignmentBytes else { return }
        let inputBytes = inputs.reduce(0) { $0 + $1.key.utf8.count + $1.value.utf8.count }
        var over: [String] = []
        var count = 0
        for task in tasks {
            let own = payloads[task.key]?.count ?? 0
            guard own + inputBytes > limit else { continue }
            count += 1
            if over.count < 5 { over.append("`\(task.key)` (input \(own) bytes)") }
        }
        guard count > 0 else { return }
        let named = over.joined(separator: ", ") + (count > over.count ? " and \(count - over.count) more" : "")
        throw AppError.invalidArgument(
            "\(count == 1 ? "task" : "\(count) tasks") \(named) cannot be handed to an executor: every assignment carries "
                + "the task's input and the query's inputs (\(inputBytes) bytes), together over the \(limit) bytes sent to "
                + "executors (max-assignment-size; gRPC clients accept 4 MiB by default): pass large data by reference")
    }
}
