import OrchestratorDomain

/// Failures of application operations, in terms the gRPC edge maps to status codes once.
public enum AppError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The caller's input is wrong; `issues` lists every problem found.
    case invalidArgument(String, issues: [ValidationIssue] = [])
    case notFound(String)
    case failedPrecondition(String)
    /// What the caller tried to create exists already, differently (a request id reused for
    /// another query).
    case alreadyExists(String)
    /// A concurrent change won (DAG version conflict); re-read and retry.
    case aborted(String)
    case permissionDenied(String)
    /// The caller's credentials stopped holding during a long-lived call (a Lease stream's token
    /// expired); the message says what to do.
    case unauthenticated(String)
    case resourceExhausted(String)
    case deadlineExceeded(String)
    /// Retry later; the message is for the caller ("shutting down; reconnect and resume").
    case unavailable(String)
    /// The database cannot be reached; the reason names database internals, so it is logged,
    /// not sent.
    case storageUnavailable(String)

    public var description: String {
        switch self {
        case .invalidArgument(let message, _), .notFound(let message), .failedPrecondition(let message),
            .alreadyExists(let message), .aborted(let message),
            .permissionDenied(let message), .unauthenticated(let message), .resourceExhausted(let message), .deadlineExceeded(let message),
            .unavailable(let message), .storageUnavailable(let message):
            message
        }
    }

    /// Translates a storage failure.
    public init(_ error: StoreError) {
        switch error {
        case .notFound: self = .notFound(error.description)
        case .versionConflict: self = .aborted(error.description)
        case .tasksAlreadyStarted, .workflowFinished: self = .failedPrecondition(error.description)
        case .unavailable: self = .storageUnavailable(error.description)
        case .malformedPageToken, .pageTokenOfAnotherListing: self = .invalidArgument(error.description)
        }
    }
}
