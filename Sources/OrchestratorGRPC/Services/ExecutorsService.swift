public import Logging
public import NGRPC
public import OrchestratorAPI
public import OrchestratorApp
import OrchestratorDomain

/// `orchestrator.v1.Executors`: the Lease stream and the unary calls for polling executors,
/// translated onto `DispatchService`.
public struct ExecutorsService: Orchestrator_V1_ExecutorsProvider {
    let dispatch: DispatchService
    let leaseTTLMillis: Int64
    let logger: Logger

    public init(dispatch: DispatchService, leaseTTLMillis: Int64, logger: Logger = Logger(label: "orchestrator.grpc.executors")) {
        self.dispatch = dispatch
        self.leaseTTLMillis = leaseTTLMillis
        self.logger = logger
    }

    func mapped<T>(_ context: ServerContext, _ body: () async throws -> T) async throws(RPCStatus) -> T {
        try await mappingErrors(context, logger: logger, body)
    }

    public func lease(
        _ requests: RPCRequestStream<Orchestrator_V1_LeaseRequest>, responses: RPCResponseWriter<Orchestrator_V1_LeaseResponse>,
        context: ServerContext
    ) async throws {
        try await mapped(context) {
            guard let first = try await Self.firstMessage(of: requests, withinMillis: leaseTTLMillis) else { return }
            guard case .hello(let hello) = first.kind else {
                throw AppError.invalidArgument("the first message on a Lease stream must be `hello`")
            }
            var identity = try Self.identity(executorID: hello.executorID, capabilities: hello.capabilities, labels: hello.labels, maxInFlight: hello.maxInFlight, context: context)
            identity.version = hello.version
            let inbound = requests.map { request throws -> SessionInput in
                // A report without its lease is refused with an ack, like any other refused report,
                // rather than ending the stream (and giving back every lease on it).
                func report(_ token: Orchestrator_V1_LeaseToken?, _ outcome: TaskReport.Outcome) -> SessionInput {
                    guard let lease = try? Self.lease(token) else { return .invalidReport(Self.missingLease) }
                    return .report(lease, outcome)
                }
                switch request.kind {
                case .heartbeat(let heartbeat): return .heartbeat(heartbeat.leases.map(\.domainLease))
                case .progress(let progress): return report(progress.lease, .progress(fraction: progress.fraction, message: progress.message))
                case .completion(let completion): return report(completion.lease, .completed(result: completion.result))
                case .failure(let failure):
                    return report(failure.lease, .failed(message: failure.message, code: failure.code, retryable: failure.retryable))
                case .drain: return .drain
                case .hello: throw AppError.invalidArgument("`hello` may only be sent once, as the first message")
                case nil:
                    // Refused with an ack, not by ending the stream: it is also what a newer
                    // executor's message kind looks like here, and must not cost every lease.
                    return .invalidReport(
                        "a LeaseRequest must set one of hello, heartbeat, progress, completion, failure, drain; "
                            + "this one set none (or a kind this server does not know) and changed nothing")
                }
            }
            let ttl = leaseTTLMillis
            try await dispatch.runSession(executor: identity, resume: hello.resume.map(\.domainLease), inbound: inbound) { output in
                try await responses.write(Self.message(output, leaseTTLMillis: ttl, logger: logger))
            }
        }
    }

    /// The stream's first message, or FAILED_PRECONDITION when none came within `limit` ms (one
    /// lease TTL): a stream that never said hello stayed open, holding a stream slot and a task,
    /// with nothing to tell its author why nothing happened (found by black-box testing). The read
    /// runs in a task of its own, which a request stream's `next()` does not let go of when
    /// cancelled: after a timeout the handler's error ends the call, and that ends the read.
    static func firstMessage(
        of requests: RPCRequestStream<Orchestrator_V1_LeaseRequest>, withinMillis limit: Int64
    ) async throws -> Orchestrator_V1_LeaseRequest? {
        let first = FirstOutcome<Orchestrator_V1_LeaseRequest?>()
        return try await withCheckedThrowingContinuation { continuation in
            first.install(continuation)
            let timer = Task {
                try await Task.sleep(for: .milliseconds(limit))
                first.resume(.failure(
                    AppError.failedPrecondition("no `hello` within \(limit) ms (the lease TTL): a Lease stream must start with `hello`")))
            }
            Task {
                defer { timer.cancel() }
                do {
                    var iterator = requests.makeAsyncIterator()
                    first.resume(.success(try await iterator.next()))
                } catch {
                    first.resume(.failure(error))
                }
            }
        }
    }

    public func pollTasks(_ request: Orchestrator_V1_PollTasksRequest, context: ServerContext) async throws -> Orchestrator_V1_PollTasksResponse {
        try await mapped(context) {
            guard request.waitMs >= 0 else { throw AppError.invalidArgument("wait_ms must be ≥ 0") }
            let identity = try Self.identity(executorID: request.executorID, capabilities: request.capabilities, labels: request.labels, maxInFlight: request.maxTasks, maxInFlightField: "max_tasks", context: context)
            var wait = Duration.milliseconds(request.waitMs)
            if let left = context.timeRemaining { wait = min(wait, left - .milliseconds(50)) }
            let claimed = try await dispatch.poll(identity, maxTasks: identity.maxInFlight, wait: max(wait, .zero))
            return Orchestrator_V1_PollTasksResponse(
                assignments: claimed.map { Orchestrator_V1_Assignment($0, leaseTTLMillis: $0.leaseTTLMillis(default: leaseTTLMillis)) })
        }
    }

    public func reportStatus(_ request: Orchestrator_V1_ReportStatusRequest, context: ServerContext) async throws -> Orchestrator_V1_ReportStatusResponse {
        try await mapped(context) {
            let executorID = try Self.checkedExecutorID(request.executorID)
            let lease: LeaseToken
            let outcome: TaskReport.Outcome
            switch request.report {
            case .progress(let progress):
                (lease, outcome) = (try Self.lease(progress.lease), .progress(fraction: progress.fraction, message: progress.message))
            case .completion(let completion):
                (lease, outcome) = (try Self.lease(completion.lease), .completed(result: completion.result))
            case .failure(let failure):
                (lease, outcome) = (try Self.lease(failure.lease), .failed(message: failure.message, code: failure.code, retryable: failure.retryable))
            case nil:
                throw AppError.invalidArgument("a report must set one of progress, completion, failure")
            }
            let result = try await dispatch.report(
                lease, executorID: CallerIdentity.executorID(executorID, context: context), outcome: outcome,
                tenants: CallerIdentity.servedTenants(of: context))
            switch result {
            case .accepted:
                return Orchestrator_V1_ReportStatusResponse(accepted: true, message: "")
            case .alreadyCompleted:
                return Orchestrator_V1_ReportStatusResponse(accepted: true, message: Self.alreadyCompletedMessage(lease))
            case .staleLease(let current, let state, _):
                throw AppError.failedPrecondition(Self.staleMessage(lease, current: current, state: state))
            case .unknownTask:
                throw AppError.notFound("task \(lease.taskID) not found")
            case .heldByAnotherStream, .assignedToAnotherStream:
                throw AppError.failedPrecondition(Self.heldByAnotherStreamMessage(lease, resumed: result == .heldByAnotherStream))
            }
        }
    }

    public func heartbeat(_ request: Orchestrator_V1_HeartbeatRequest, context: ServerContext) async throws -> Orchestrator_V1_HeartbeatResponse {
        try await mapped(context) {
            let executorID = try Self.checkedExecutorID(request.executorID)
            let states = try await dispatch.heartbeat(
                executorID: CallerIdentity.executorID(executorID, context: context), leases: request.leases.map(\.domainLease))
            return Orchestrator_V1_HeartbeatResponse(leases: states.map(Self.status))
        }
    }

    // MARK: - Mapping

    /// The executor as the dispatcher sees it: validated, its id bound to the caller's identity
    /// (`CallerIdentity.executorID`) and its tenants those the caller's token grants.
    static func identity(
        executorID: String, capabilities: [String], labels: [String: String], maxInFlight: Int32,
        maxInFlightField: String = "max_in_flight", context: ServerContext
    ) throws -> ExecutorIdentity {
        var problems: [String] = []
        if let problem = executorIDProblem(executorID) { problems.append(problem) }
        if maxInFlight < 0 { problems.append("\(maxInFlightField) must be ≥ 0 (0 = 1), got \(maxInFlight)") }
        if capabilities.contains(where: { $0.isEmpty || $0.utf8.count > 128 }) { problems.append("every capability must be 1-128 bytes of UTF-8") }
        if capabilities.count > 256 { problems.append("at most 256 capabilities") }
        guard problems.isEmpty else { throw AppError.invalidArgument("invalid executor: " + problems.joined(separator: "; ")) }
        var identity = ExecutorIdentity(
            executorID: CallerIdentity.executorID(executorID, context: context), capabilities: Set(capabilities), labels: labels,
            maxInFlight: max(1, Int(maxInFlight)), tenants: CallerIdentity.servedTenants(of: context))
        // Clamped: a token may carry any finite `exp` (1e300 included), which no Int64 holds.
        identity.credentialsExpireAt = CallerIdentity.validUntil(context).map { seconds in
            seconds * 1000 < Double(UnixMillis.max) ? UnixMillis((seconds * 1000).rounded(.down)) : .max
        }
        return identity
    }

    /// An executor id as the client sent it, checked: 1-128 bytes of UTF-8 in NFC, none of them a
    /// control character (a newline or an escape sequence in an id forged lines in logs and in
    /// `orchctl events`).
    static func executorIDProblem(_ executorID: String) -> String? {
        if executorID.isEmpty || executorID.utf8.count > 128 { return "executor_id must be 1-128 bytes of UTF-8" }
        if executorID.unicodeScalars.contains(where: \.isInvisibleInText) {
            return "executor_id must not contain control characters (nor invisible format characters or line separators)"
        }
        if !executorID.isNFC {
            return "executor_id must be in Unicode normalization form C (NFC): executor ids are compared byte by byte"
        }
        return nil
    }

    static func checkedExecutorID(_ executorID: String) throws(AppError) -> String {
        if let problem = executorIDProblem(executorID) { throw AppError.invalidArgument(problem) }
        return executorID
    }

    static let missingLease = "a report must carry its lease (task_id and fencing_token); this one was refused and changed nothing"

    static func lease(_ token: Orchestrator_V1_LeaseToken?) throws -> LeaseToken {
        guard let token, !token.taskID.isEmpty else { throw AppError.invalidArgument(missingLease) }
        return token.domainLease
    }

    static func alreadyCompletedMessage(_ lease: LeaseToken) -> String {
        "already completed: your completion of task \(lease.taskID) with fencing token \(lease.fencingToken) was stored before; "
            + "this one changed nothing"
    }

    /// Names what happened: a takeover only when the holder resumed the lease (a report on a
    /// sibling stream's own assignment was told of a resume that never was; found by black-box
    /// testing).
    static func heldByAnotherStreamMessage(_ lease: LeaseToken, resumed: Bool) -> String {
        (resumed
            ? "lease taken over: another stream of this executor id resumed the lease on task \(lease.taskID) (fencing token "
                + "\(lease.fencingToken)) and holds it now"
            : "lease held by another stream: the lease on task \(lease.taskID) (fencing token \(lease.fencingToken)) was "
                + "assigned to another stream of this executor id, which holds it")
            + "; reports from this stream are refused and changed nothing (two processes share this executor id: give each its own)"
    }

    static func staleMessage(_ lease: LeaseToken, current: Int64, state: TaskState) -> String {
        if lease.fencingToken == current, state == .leased || state == .running {
            // The token is current and the task is leased: only the holder differs.
            return "lease not held by you: this report for task \(lease.taskID) carries its current fencing token \(current), "
                + "but the lease is held by another executor (a report must come from the executor_id the task was assigned to); "
                + "the report was refused and changed nothing"
        }
        // The store reads RETRY_WAIT as ready; a task that had a lease and is neither is waiting
        // for its next attempt either way ("the task is ready" read wrong beside GetWorkflow's
        // RETRY_WAIT; found by black-box testing).
        let shown = state == .ready ? "waiting for its next attempt" : state.rawValue
        if lease.fencingToken > current || lease.fencingToken < 1 {
            // Tokens start at 1 and grow by one per lease: this one was never handed out (a client
            // bug, or a guess).
            return "unknown lease: this report for task \(lease.taskID) carries fencing token \(lease.fencingToken), which was never "
                + "issued (the task is \(shown), latest token \(current)); the report was refused and changed nothing"
        }
        return "stale lease: this report for task \(lease.taskID) carries fencing token \(lease.fencingToken), but that lease is no longer held "
            + "(the task is \(shown), latest token \(current)); the report was refused and changed nothing"
    }

    static func status(_ state: LeaseState) -> Orchestrator_V1_LeaseStatus {
        Orchestrator_V1_LeaseStatus(lease: Orchestrator_V1_LeaseToken(state.lease), valid: state.valid, leaseExpiresUnixMs: state.expiresAt ?? 0)
    }

    static func message(_ output: SessionOutput, leaseTTLMillis: Int64, logger: Logger) -> Orchestrator_V1_LeaseResponse {
        var response = Orchestrator_V1_LeaseResponse()
        switch output {
        case .welcome(let sessionID, let heartbeat, let ttl, let resumed, let rejected):
            response.kind = .welcome(Orchestrator_V1_Welcome(
                sessionID: sessionID, heartbeatIntervalMs: heartbeat, leaseTtlMs: ttl,
                resumed: resumed.map(Orchestrator_V1_LeaseToken.init), rejectedResumes: rejected.map(Orchestrator_V1_LeaseToken.init),
                serverVersion: OrchestratorRelease.version))
        case .assignment(let claimed):
            response.kind = .assignment(Orchestrator_V1_Assignment(claimed, leaseTTLMillis: claimed.leaseTTLMillis(default: leaseTTLMillis)))
        case .revocation(let lease, let reason):
            response.kind = .revocation(Orchestrator_V1_Revocation(lease: Orchestrator_V1_LeaseToken(lease), reason: reason))
        case .ack(let lease, let result):
            var ack = Orchestrator_V1_ReportAck()
            ack.lease = Orchestrator_V1_LeaseToken(lease)
            switch result {
            case .accepted:
                ack.accepted = true
            case .alreadyCompleted:
                ack.accepted = true
                ack.message = alreadyCompletedMessage(lease)
            case .staleLease(let current, let state, _):
                ack.code = Int32(RPCStatus.Code.failedPrecondition.rawValue)
                ack.message = staleMessage(lease, current: current, state: state)
            case .unknownTask:
                ack.code = Int32(RPCStatus.Code.notFound.rawValue)
                ack.message = "task \(lease.taskID) not found"
            case .heldByAnotherStream, .assignedToAnotherStream:
                ack.code = Int32(RPCStatus.Code.failedPrecondition.rawValue)
                ack.message = heldByAnotherStreamMessage(lease, resumed: result == .heldByAnotherStream)
            }
            response.kind = .ack(ack)
        case .invalidReportAck(let reason):
            var ack = Orchestrator_V1_ReportAck()
            ack.code = Int32(RPCStatus.Code.invalidArgument.rawValue)
            ack.message = reason
            response.kind = .ack(ack)
        case .reportFailedAck(let lease, let error):
            var ack = Orchestrator_V1_ReportAck()
            ack.lease = Orchestrator_V1_LeaseToken(lease)
            let status = StatusMapping.status(for: error, logger: logger, method: "/orchestrator.v1.Executors/Lease")
            ack.code = Int32(status.code.rawValue)
            ack.message = status.message
            response.kind = .ack(ack)
        case .heartbeatAck(let states):
            response.kind = .heartbeatAck(Orchestrator_V1_HeartbeatAck(leases: states.map(status)))
        }
        return response
    }
}
