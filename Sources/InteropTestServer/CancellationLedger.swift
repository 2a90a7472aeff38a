import NGRPC
import Synchronization

/// Counts, per request tag, the handlers that observed cancellation and those that ran to the
/// end, so tests can ask through `Cancellations` whether a handler saw an RST_STREAM or deadline.
///
/// Thread-safety: the counts sit behind `counts`' mutex; handlers on any thread record into it.
final class CancellationLedger: Sendable {
    struct Counts: Sendable {
        var cancelled: Int32 = 0
        var completed: Int32 = 0
    }

    private let counts = Mutex<[String: Counts]>([:])

    func report(tag: String) -> Counts {
        counts.withLock { $0[tag] ?? Counts() }
    }

    /// Records a handler that ran to its end (including one that ended with a requested `fail_with`).
    func recordCompleted(tag: String) {
        guard !tag.isEmpty else { return }
        counts.withLock { $0[tag, default: Counts()].completed += 1 }
    }

    /// Records how a handler ended with `error` and returns the error the handler should throw:
    /// a requested failure becomes its status; anything caused by cancellation counts as cancelled.
    func finish(tag: String, error: any Error, context: ServerContext) -> any Error {
        if let requested = error as? RequestedFailure {
            recordCompleted(tag: tag)
            return requested.status
        }
        if Self.isCancellation(error, context: context) {
            if !tag.isEmpty { counts.withLock { $0[tag, default: Counts()].cancelled += 1 } }
        }
        return error
    }

    private static func isCancellation(_ error: any Error, context: ServerContext) -> Bool {
        if context.isCancelled || error is CancellationError || Task.isCancelled { return true }
        if let status = error as? RPCStatus { return status.code == .cancelled || status.code == .deadlineExceeded }
        return false
    }
}

/// The status a request asked for with `fail_with`: the handler finished as told, not cancelled.
struct RequestedFailure: Error {
    let status: RPCStatus
}
