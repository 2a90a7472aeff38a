public import Logging
public import NGRPC
public import OrchestratorAPI
internal import OrchestratorApp
internal import OrchestratorDomain

/// The one place where errors become gRPC statuses.
///
/// Caller mistakes get the code the API documents and a message that lists every problem (so a
/// client fixes its request in one round trip); the problems are also attached as
/// `grpc-status-details-bin` (a `google.rpc.Status` whose details are `orchestrator.v1.ValidationProblem`
/// messages). Anything the edge does not recognise becomes INTERNAL "internal error": the real error
/// is logged with the method, never sent.
public enum StatusMapping {
    /// Longest status message sent, measured as it travels: `grpc-message` is percent-encoded, so every
    /// byte outside printable ASCII (each byte of "→", say) costs three. Trailers share one header-list
    /// budget with the status details, and common clients refuse more than 8 KiB of metadata (grpcio's
    /// default), so long problem lists are cut here with a count of what was left out.
    public static let maxMessageWireBytes = 2048

    /// The status for `error`. An `RPCStatus` passes through with its code and details. Every
    /// message goes out `displayable`: messages quote what callers sent (an id, a key), and a
    /// newline or a right-to-left override in one reached every client's logs and terminals as it
    /// was (found by black-box testing).
    public static func status(for error: any Error, logger: Logger, method: String = "") -> RPCStatus {
        var status = undisplayedStatus(for: error, logger: logger, method: method)
        status.message = displayable(status.message)
        return status
    }

    /// `message` with control characters (C0, DEL, C1) and the invisible characters that reorder or
    /// hide text (bidirectional marks, overrides and isolates; zero-width and byte-order marks)
    /// written as `\u{…}`; cut to `maxMessageWireBytes` if escaping made it longer.
    public static func displayable(_ message: String) -> String {
        guard message.unicodeScalars.contains(where: isUndisplayable) else { return message }
        var text = ""
        for scalar in message.unicodeScalars {
            if isUndisplayable(scalar) {
                text += "\\u{\(String(scalar.value, radix: 16, uppercase: true))}"
            } else {
                text.unicodeScalars.append(scalar)
            }
        }
        guard wireSize(text) > maxMessageWireBytes else { return text }
        return clipped(text, toWireBytes: maxMessageWireBytes)
    }

    static func isUndisplayable(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x00...0x1F, 0x7F...0x9F: true
        case 0x061C, 0x200B...0x200F, 0x202A...0x202E, 0x2060...0x2069, 0xFEFF: true
        default: false
        }
    }

    private static func undisplayedStatus(for error: any Error, logger: Logger, method: String) -> RPCStatus {
        switch error {
        case let status as RPCStatus:
            return status
        case let failure as RequestValidationError:
            return invalid(failure.subject, failure.problems, total: failure.totalCount)
        case let failure as ValidationFailure:
            return invalid("invalid DAG", failure.issues.map(Orchestrator_V1_ValidationProblem.init), total: failure.totalIssueCount)
        case let failure as PlanningError:
            return status(for: failure)
        case let failure as StoreError:
            return status(for: failure, logger: logger, method: method)
        case let failure as AppError:
            return status(for: failure, logger: logger, method: method)
        case let conflict as DagVersionConflict:
            return RPCStatus(.aborted, conflict.description)
        case let transition as TransitionError:
            return RPCStatus(.failedPrecondition, transition.description)
        case is CancellationError:
            return RPCStatus(.cancelled, "the call was cancelled")
        case let interrupted as WatchInterrupted:
            return RPCStatus(
                .unavailable,
                "orchestratord is shutting down; watch again (after a restart, or on another server) with after_sequence = \(interrupted.lastSequence)")
        case let unavailable as WatchStorageUnavailable:
            logger.warning("watch ended: storage unavailable", metadata: ["method": "\(method)", "reason": "\(unavailable.reason)"])
            return RPCStatus(
                .unavailable,
                "the database is unavailable; watch again with after_sequence = \(unavailable.lastSequence) once it is back")
        default:
            return internalError(error, logger: logger, method: method)
        }
    }

    /// The problems a rejection carries (SubmitStream's `Rejected.problems`); empty for errors that are
    /// not about the request's content.
    public static func problems(for error: any Error) -> [Orchestrator_V1_ValidationProblem] {
        switch error {
        case let failure as RequestValidationError: failure.problems
        case let failure as ValidationFailure: failure.issues.map(Orchestrator_V1_ValidationProblem.init)
        case let failure as PlanningError: problems(for: failure)
        case .invalidArgument(_, let issues) as AppError: issues.map(Orchestrator_V1_ValidationProblem.init)
        default: []
        }
    }

    /// SubmitStream's per-query rejection: the status the unary call would have returned, and its problems.
    public static func rejection(for error: any Error, logger: Logger, method: String = "") -> Orchestrator_V1_SubmitStreamResponse.Rejected
    {
        let status = status(for: error, logger: logger, method: method)
        return Orchestrator_V1_SubmitStreamResponse.Rejected(
            code: Int32(status.code.rawValue), message: status.message, problems: problems(for: error))
    }

    // MARK: - Typed errors

    static func status(for error: PlanningError) -> RPCStatus {
        switch error.code {
        case .invalidGraph:
            let issues = error.issues.map(Orchestrator_V1_ValidationProblem.init)
            if issues.isEmpty { return invalid("invalid DAG", problems(for: error)) }
            return invalid("invalid DAG", issues)
        case .invalidQuery, .noGoal, .unreachableGoal, .constraintViolated, .unknownPlanner:
            return invalid("cannot plan the query", problems(for: error))
        }
    }

    static func problems(for error: PlanningError) -> [Orchestrator_V1_ValidationProblem] {
        if error.code == .invalidGraph, !error.issues.isEmpty {
            return error.issues.map(Orchestrator_V1_ValidationProblem.init)
        }
        return [Orchestrator_V1_ValidationProblem(code: ProblemCode(error.code).rawValue, message: error.message)]
    }

    static func status(for error: StoreError, logger: Logger, method: String) -> RPCStatus {
        switch error {
        case .notFound(let what): return RPCStatus(.notFound, "not found: \(what)")
        case .versionConflict: return RPCStatus(.aborted, error.description)
        case .tasksAlreadyStarted, .workflowFinished: return RPCStatus(.failedPrecondition, error.description)
        case .malformedPageToken, .pageTokenOfAnotherListing: return RPCStatus(.invalidArgument, error.description)
        case .unavailable(let reason):
            // The reason names database internals (hosts, SQL states): logged, not sent — once,
            // then every 30 s while the database stays out.
            if let suppressed = outageLogs.admit("storage unavailable: \(reason)") {
                logger.warning("storage unavailable", metadata: ["method": "\(method)", "reason": "\(reason)", "suppressed": "\(suppressed)"])
            }
            return RPCStatus(.unavailable, "storage is temporarily unavailable; retry later")
        }
    }

    /// Per-call warnings about the database being out: once, then every 30 s.
    static let outageLogs = LogThrottle()

    static func status(for error: AppError, logger: Logger, method: String) -> RPCStatus {
        switch error {
        case .invalidArgument(let message, let issues):
            if issues.isEmpty { return RPCStatus(.invalidArgument, message) }
            return invalid("invalid DAG", issues.map(Orchestrator_V1_ValidationProblem.init))
        case .notFound(let message): return RPCStatus(.notFound, message)
        case .failedPrecondition(let message): return RPCStatus(.failedPrecondition, message)
        case .alreadyExists(let message): return RPCStatus(.alreadyExists, message)
        case .aborted(let message): return RPCStatus(.aborted, message)
        case .permissionDenied(let message): return RPCStatus(.permissionDenied, message)
        case .unauthenticated(let message): return RPCStatus(.unauthenticated, message)
        case .resourceExhausted(let message): return RPCStatus(.resourceExhausted, message)
        case .deadlineExceeded(let message): return RPCStatus(.deadlineExceeded, message)
        case .unavailable(let message):
            // Written for the caller (a lease stream ended by shutdown or silence: what to do next).
            return RPCStatus(.unavailable, message)
        case .storageUnavailable(let reason):
            if let suppressed = outageLogs.admit("storage unavailable: \(reason)") {
                logger.warning("unavailable", metadata: ["method": "\(method)", "reason": "\(reason)", "suppressed": "\(suppressed)"])
            }
            return RPCStatus(.unavailable, "the service is temporarily unavailable; retry later")
        }
    }

    static func internalError(_ error: any Error, logger: Logger, method: String) -> RPCStatus {
        logger.error(
            "internal error", metadata: ["method": "\(method)", "error": "\(String(reflecting: error))"])
        return RPCStatus(.internal, "internal error")
    }

    // MARK: - Messages

    /// INVALID_ARGUMENT listing every problem, with the problems attached as status details.
    static func invalid(_ subject: String, _ problems: [Orchestrator_V1_ValidationProblem], total: Int? = nil) -> RPCStatus {
        let message = listing(subject, problems.map(\.message), total: total ?? problems.count)
        return RPCStatus(
            .invalidArgument, message,
            details: StatusDetails.encode(code: .invalidArgument, message: message, problems: problems, total: total ?? problems.count))
    }

    /// `invalid DAG: 3 problems: cycle: a → b → a …; task `x` depends on unknown task `y`; …`, cut at
    /// `maxMessageWireBytes` (percent-encoded) with the number of problems left out.
    public static func listing(_ subject: String, _ messages: [String], total: Int) -> String {
        let total = max(total, messages.count)
        guard total > 0 else { return subject }
        var text = total == 1 ? "\(subject): " : "\(subject): \(total) problems: "
        var size = wireSize(text)
        var shown = 0
        for message in messages {
            let separator = shown == 0 ? "" : "; "
            let cost = wireSize(separator) + wireSize(message)
            // Room is kept for the "; … and N more" tail (at most 40 encoded bytes).
            if size + cost > maxMessageWireBytes - 40 {
                // The first problem is named even when it alone is too long, cut short: a message
                // saying only "… and 1 more" named nothing (found by black-box testing: a 5,000-byte
                // goal or unknown dependency).
                if shown == 0 {
                    text += clipped(message, toWireBytes: maxMessageWireBytes - 40 - size)
                    shown = 1
                }
                break
            }
            text += separator + message
            size += cost
            shown += 1
        }
        if shown < total { text += "; … and \(total - shown) more" }
        return text
    }

    /// `text` cut at a character boundary so that it and a closing "…" take at most `budget` bytes
    /// once percent-encoded.
    static func clipped(_ text: String, toWireBytes budget: Int) -> String {
        var kept = ""
        var size = wireSize("…")
        for character in text {
            let cost = wireSize(String(character))
            if size + cost > budget { break }
            kept.append(character)
            size += cost
        }
        return kept + "…"
    }

    /// Length of `text` once percent-encoded for `grpc-message`.
    public static func wireSize(_ text: String) -> Int {
        var size = 0
        for byte in text.utf8 { size += (byte < 0x20 || byte > 0x7E || byte == UInt8(ascii: "%")) ? 3 : 1 }
        return size
    }
}
