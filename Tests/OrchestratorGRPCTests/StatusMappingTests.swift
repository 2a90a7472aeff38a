import Foundation
import Logging
import NGRPC
import OrchestratorAPI
import OrchestratorApp
import OrchestratorDomain
import OrchestratorGRPC
import Testing

@Suite("Status mapping")
struct StatusMappingTests {
    struct SecretFailure: Error, CustomStringConvertible {
        var description: String { "connection to db-primary.internal:5432 refused" }
    }

    static func status(_ error: any Error, logs: CapturedLogs = CapturedLogs()) -> RPCStatus {
        StatusMapping.status(for: error, logger: logs.logger(), method: "/orchestrator.v1.Workflows/GetWorkflow")
    }

    @Test func aWatchEndedByTheDatabaseSaysWhereToResumeAndKeepsItsDetailsInTheLog() {
        let logs = CapturedLogs()
        let status = Self.status(WatchStorageUnavailable(lastSequence: 41, reason: "connection to 10.0.0.5 refused"), logs: logs)
        #expect(status == RPCStatus(.unavailable, "the database is unavailable; watch again with after_sequence = 41 once it is back"))
        #expect(!status.message.contains("10.0.0.5"))
    }

    /// Messages quote what callers sent; a newline or a right-to-left override in an id reached
    /// clients' logs and terminals as it was (found by black-box testing).
    @Test func messagesEscapeControlAndInvisibleCharacters() {
        let status = Self.status(AppError.notFound("workflow wf_\n\u{1}x\u{202E}cba\u{200B} not found"))
        #expect(status == RPCStatus(.notFound, "workflow wf_\\u{A}\\u{1}x\\u{202E}cba\\u{200B} not found"))
        #expect(Self.status(AppError.notFound("workflow wf_é → ok")).message == "workflow wf_é → ok")
        // Escaping never takes a message past the wire budget.
        let long = Self.status(AppError.invalidArgument(String(repeating: "\u{7}", count: 3000), issues: []))
        #expect(StatusMapping.wireSize(long.message) <= StatusMapping.maxMessageWireBytes)
        #expect(long.message.hasPrefix("\\u{7}\\u{7}") && long.message.hasSuffix("…"))
    }

    @Test func storeErrors() {
        #expect(Self.status(StoreError.notFound("workflow wf_1")) == RPCStatus(.notFound, "not found: workflow wf_1"))
        let conflict = Self.status(StoreError.versionConflict(expected: 2, current: 3))
        #expect(conflict.code == .aborted)
        #expect(conflict.message.contains("expected version 2 but the current version is 3"))
        #expect(Self.status(StoreError.tasksAlreadyStarted(["a", "b"])).code == .failedPrecondition)
        #expect(Self.status(StoreError.workflowFinished("wf_1", .succeeded)).code == .failedPrecondition)

        let logs = CapturedLogs()
        let unavailable = Self.status(StoreError.unavailable("db-primary.internal: timeout"), logs: logs)
        #expect(unavailable.code == .unavailable)
        #expect(!unavailable.message.contains("db-primary"))
        #expect(logs.all.contains { $0.contains("db-primary.internal: timeout") })

        // Converted to AppError on the way (services do), the reason stays in the log too.
        let converted = Self.status(AppError(StoreError.unavailable("db-primary.internal: refused")), logs: logs)
        #expect(converted == RPCStatus(.unavailable, "the service is temporarily unavailable; retry later"))
        #expect(logs.all.contains { $0.contains("db-primary.internal: refused") })
        // The application's own reasons are for the caller: a lease stream ended by a shutdown says what to do.
        #expect(Self.status(AppError.unavailable("orchestratord is shutting down; reconnect and resume your leases"))
            == RPCStatus(.unavailable, "orchestratord is shutting down; reconnect and resume your leases"))
    }

    @Test func unknownErrorsAreInternalLoggedAndNotLeaked() {
        let logs = CapturedLogs()
        let status = Self.status(SecretFailure(), logs: logs)
        #expect(status == RPCStatus(.internal, "internal error"))
        #expect(logs.all.count == 1)
        #expect(logs.all[0].contains("db-primary.internal:5432"))
        #expect(logs.all[0].contains("method=/orchestrator.v1.Workflows/GetWorkflow"))
    }

    @Test func callerMistakesAreNeverInternal() {
        let errors: [any Error] = [
            ValidationFailure(issues: [ValidationIssue(code: .emptyGraph, message: "empty")]),
            PlanningError(.invalidQuery, "bad"), PlanningError(.noGoal, "no goal"), PlanningError(.unknownPlanner, "nope"),
            PlanningError(.constraintViolated, "too big"), PlanningError(.unreachableGoal, "cannot", missingArtifacts: ["x"]),
            PlanningError(.invalidGraph, "bad graph", issues: [ValidationIssue(code: .cycle, message: "cycle: a → a")]),
            RequestValidationError(subject: "invalid query", problems: [.init(code: "INVALID_FIELD", message: "m")]),
            AppError.invalidArgument("bad request id"),
        ]
        for error in errors {
            #expect(Self.status(error).code == .invalidArgument, "\(error)")
        }
        var workflow = Workflow(id: "wf_1", query: Query(text: "x"))
        #expect(throws: DagVersionConflict.self) { try workflow.append(DagVersion(number: 4, dag: Dag(), reason: "late")) }
        do {
            try workflow.append(DagVersion(number: 4, dag: Dag(), reason: "late"))
        } catch {
            #expect(Self.status(error).code == .aborted)
        }
        #expect(
            Self.status(TransitionError(machine: "task", state: "succeeded", event: "lease", legalEvents: [])).code == .failedPrecondition)
        #expect(Self.status(AppError.notFound("x")).code == .notFound)
        #expect(Self.status(AppError.aborted("x")).code == .aborted)
        #expect(Self.status(AppError.failedPrecondition("x")).code == .failedPrecondition)
        #expect(Self.status(AppError.permissionDenied("x")).code == .permissionDenied)
        #expect(Self.status(AppError.resourceExhausted("x")).code == .resourceExhausted)
        #expect(Self.status(AppError.deadlineExceeded("x")).code == .deadlineExceeded)
        #expect(Self.status(AppError.unavailable("x")).code == .unavailable)
        #expect(Self.status(CancellationError()).code == .cancelled)
        #expect(Self.status(RPCStatus(.permissionDenied, "no")) == RPCStatus(.permissionDenied, "no"))
    }

    @Test func validationFailureListsEveryIssueWithCodes() throws {
        let failure = ValidationFailure(
            issues: [
                ValidationIssue(code: .cycle, message: "cycle: a → b → c → a (3 tasks)", taskKeys: ["a", "b", "c"]),
                ValidationIssue(code: .unknownTask, message: "edge #0 (y → x) refers to unknown task `y` (its source)", taskKeys: ["y"]),
                ValidationIssue(code: .keyTooLong, message: "too long", taskKeys: ["k"]),
            ], totalIssueCount: 5)
        let status = Self.status(failure)
        #expect(
            status.message
                == "invalid DAG: 5 problems: cycle: a → b → c → a (3 tasks); edge #0 (y → x) refers to unknown task `y` (its source); too long; … and 2 more"
        )
        let problems = try #require(status.details.flatMap(StatusDetails.decodeProblems))
        // The two validation stopped keeping are counted by a last entry, so a program reading only
        // the details knows the list is not complete.
        #expect(problems.map(\.code) == ["CYCLE", "UNKNOWN_DEPENDENCY", "INVALID_KEY", "MORE_PROBLEMS"])
        #expect(problems[0].taskKeys == ["a", "b", "c"])
        #expect(problems[3].message.hasPrefix("2 more problems not attached (5 in all"))
    }

    @Test func longListsAreCutToFitATrailer() throws {
        let problems = (0..<500).map {
            Orchestrator_V1_ValidationProblem(code: "CYCLE", message: "cycle: t\($0) → u\($0) → t\($0)", taskKeys: ["t\($0)", "u\($0)"])
        }
        let status = Self.status(RequestValidationError(subject: "invalid DAG", problems: problems))
        // Measured percent-encoded: each "→" costs 9 bytes on the wire.
        #expect(StatusMapping.wireSize(status.message) <= StatusMapping.maxMessageWireBytes)
        #expect(StatusMapping.wireSize("a→%") == 1 + 9 + 3)
        #expect(status.message.hasPrefix("invalid DAG: 500 problems: cycle: t0 → u0 → t0; cycle: t1 → u1 → t1; "))
        #expect(status.message.range(of: #"; … and \d+ more$"#, options: .regularExpression) != nil)
        let details = try #require(status.details)
        #expect(details.count <= StatusDetails.maxBytes)
        let attached = try #require(StatusDetails.decodeProblems(details))
        #expect(attached.count > 1 && attached.count < 500)
        let listed = attached.dropLast()
        #expect(Array(listed) == Array(problems.prefix(listed.count)))
        #expect(attached.last?.code == "MORE_PROBLEMS")
        #expect(attached.last?.message.hasPrefix("\(500 - listed.count) more problems not attached (500 in all") == true)
    }

    /// A first problem too long for the message or the details was left out of both: the message
    /// said only "… and 1 more" (found by black-box testing: a 5,000-byte unknown dependency).
    @Test func aProblemTooLongAloneIsNamedCutShort() throws {
        let key = String(repeating: "k", count: 5000)
        let long = Orchestrator_V1_ValidationProblem(code: "UNKNOWN_DEPENDENCY", message: "task `a` depends on unknown task `\(key)`", taskKeys: [key])
        let short = Orchestrator_V1_ValidationProblem(code: "CYCLE", message: "cycle: b → b", taskKeys: ["b"])
        for problems in [[long], [long, short]] {
            let status = Self.status(RequestValidationError(subject: "invalid DAG", problems: problems))
            #expect(status.message.contains("task `a` depends on unknown task `kkk"), "\(status.message)")
            #expect(StatusMapping.wireSize(status.message) <= StatusMapping.maxMessageWireBytes)
            let details = try #require(status.details)
            #expect(details.count <= StatusDetails.maxBytes)
            let attached = try #require(StatusDetails.decodeProblems(details))
            #expect(attached.first?.code == "UNKNOWN_DEPENDENCY")
            #expect(attached.first?.message.hasPrefix("task `a` depends on unknown task `kkk") == true)
            #expect(attached.first?.message.hasSuffix("…") == true)
            if problems.count == 2 {
                #expect(status.message.hasSuffix("; … and 1 more"), "\(status.message)")
                #expect(attached.map(\.code) == ["UNKNOWN_DEPENDENCY", "MORE_PROBLEMS"])
            }
        }
    }

    @Test func everyProblemThatFitsIsAttachedWithoutAMarker() throws {
        let problems = (0..<5).map { Orchestrator_V1_ValidationProblem(code: "CYCLE", message: "cycle \($0)", taskKeys: ["t\($0)"]) }
        let bytes = try #require(StatusDetails.encode(code: .invalidArgument, message: "m", problems: problems))
        #expect(StatusDetails.decodeProblems(bytes) == problems)
        // One that fits only without the marker's room is still attached when it is the last.
        let big = Orchestrator_V1_ValidationProblem(code: "CYCLE", message: String(repeating: "x", count: StatusDetails.maxBytes - 120))
        let alone = try #require(StatusDetails.encode(code: .invalidArgument, message: "m", problems: [big]))
        #expect(StatusDetails.decodeProblems(alone) == [big])
    }

    @Test func rejectionCarriesCodeMessageAndProblems() {
        let rejected = StatusMapping.rejection(
            for: PlanningError(.unreachableGoal, "cannot produce `x`", missingArtifacts: ["x"]), logger: Logger(label: "test"))
        #expect(rejected.code == 3)
        #expect(rejected.message == "cannot plan the query: cannot produce `x`")
        #expect(rejected.problems == [Orchestrator_V1_ValidationProblem(code: "UNREACHABLE_GOAL", message: "cannot produce `x`")])
    }

    @Test func statusDetailsAreAGoogleRPCStatus() throws {
        let problem = Orchestrator_V1_ValidationProblem(code: "CYCLE", message: "cycle: a → a", taskKeys: ["a"])
        let bytes = try #require(StatusDetails.encode(code: .invalidArgument, message: "m", problems: [problem]))
        // code = 3 (field 1 varint), message "m" (field 2), then one Any (field 3).
        #expect(Array(bytes.prefix(5)) == [0x08, 0x03, 0x12, 0x01, UInt8(ascii: "m")])
        #expect(bytes[5] == 0x1A)
        #expect(StatusDetails.decodeProblems(bytes) == [problem])
        #expect(StatusDetails.encode(code: .invalidArgument, message: "m", problems: []) == nil)
    }
}
