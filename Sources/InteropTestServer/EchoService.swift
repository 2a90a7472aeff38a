import NGRPC
import OrchestratorAPI

/// `orchestrator.testing.v1.Echo`, with the semantics documented in echo.proto:
/// - `x-echo-*` request metadata is copied into the response headers and the trailers;
/// - `delay_ms` sleeps (Get: once; Expand: before each response; Chat: before each reply),
///   waking as soon as the call is cancelled;
/// - `fail_with` with a non-zero code ends the call with that status (Expand: after its `count`
///   responses; Collect and Chat: when the request carrying it arrives);
/// - `tag` names the call in the `Cancellations` bookkeeping.
/// Collect answers `count` = requests received and `text` = their texts concatenated.
struct EchoService: Orchestrator_Testing_V1_EchoProvider {
    typealias Request = Orchestrator_Testing_V1_EchoRequest
    typealias Response = Orchestrator_Testing_V1_EchoResponse

    let ledger: CancellationLedger

    func get(_ request: Request, context: ServerContext) async throws -> Response {
        echoMetadata(context)
        do {
            try await pause(milliseconds: request.delayMs, context: context)
        } catch {
            throw ledger.finish(tag: request.tag, error: error, context: context)
        }
        return try reply(to: request, context: context)
    }

    /// Get without the Task: everything but a `delay_ms` pause, which declines (nil) to `get`.
    /// Registered with `RPCRouter.registerSynchronousUnary`, so Echo/Get runs inline on the I/O
    /// thread (tools/bench rpc measures this method).
    func getImmediately(_ request: Request, context: ServerContext) throws -> Response? {
        guard request.delayMs <= 0 else { return nil }
        echoMetadata(context)
        return try reply(to: request, context: context)
    }

    /// Get's answer once any pause is over: the requested failure, or the echo.
    private func reply(to request: Request, context: ServerContext) throws -> Response {
        do {
            try checkRequestedFailure(request)
            ledger.recordCompleted(tag: request.tag)
            return Response(
                text: request.text, payload: request.payload, index: 0, peer: context.peer,
                traceID: context.trace.traceID, count: 0)
        } catch {
            throw ledger.finish(tag: request.tag, error: error, context: context)
        }
    }

    func expand(_ request: Request, responses: RPCResponseWriter<Response>, context: ServerContext) async throws {
        echoMetadata(context)
        do {
            let payload = [UInt8](repeating: 0, count: max(0, Int(request.responseSize)))
            for index in 0..<max(0, request.count) {
                try await pause(milliseconds: request.delayMs, context: context)
                try await responses.write(
                    Response(
                        text: request.text, payload: payload, index: index, peer: context.peer,
                        traceID: context.trace.traceID, count: 0))
            }
            try checkRequestedFailure(request)
            ledger.recordCompleted(tag: request.tag)
        } catch {
            throw ledger.finish(tag: request.tag, error: error, context: context)
        }
    }

    func collect(_ requests: RPCRequestStream<Request>, context: ServerContext) async throws -> Response {
        echoMetadata(context)
        var tag = ""
        do {
            var count: Int32 = 0
            var text = ""
            for try await request in requests {
                if tag.isEmpty { tag = request.tag }
                try checkRequestedFailure(request)
                count += 1
                text += request.text
            }
            ledger.recordCompleted(tag: tag)
            return Response(text: text, payload: [], index: 0, peer: context.peer, traceID: context.trace.traceID, count: count)
        } catch {
            throw ledger.finish(tag: tag, error: error, context: context)
        }
    }

    func chat(_ requests: RPCRequestStream<Request>, responses: RPCResponseWriter<Response>, context: ServerContext) async throws {
        echoMetadata(context)
        var tag = ""
        do {
            var index: Int32 = 0
            for try await request in requests {
                if tag.isEmpty { tag = request.tag }
                try await pause(milliseconds: request.delayMs, context: context)
                try checkRequestedFailure(request)
                try await responses.write(
                    Response(
                        text: request.text, payload: request.payload, index: index, peer: context.peer,
                        traceID: context.trace.traceID, count: 0))
                index += 1
            }
            ledger.recordCompleted(tag: tag)
        } catch {
            throw ledger.finish(tag: tag, error: error, context: context)
        }
    }

    func cancellations(_ request: Orchestrator_Testing_V1_CancellationQuery, context: ServerContext) async throws
        -> Orchestrator_Testing_V1_CancellationReport
    {
        let counts = ledger.report(tag: request.tag)
        return Orchestrator_Testing_V1_CancellationReport(cancelled: counts.cancelled, completed: counts.completed)
    }

    /// Copies `x-echo-*` request metadata (string and binary) to the response headers and trailers.
    private func echoMetadata(_ context: ServerContext) {
        var echoed = Metadata()
        for entry in context.requestMetadata where entry.key.hasPrefix("x-echo-") {
            echoed.add(entry.key, value: entry.value)
        }
        guard !echoed.isEmpty else { return }
        context.responseHeaders = echoed
        context.trailers = echoed
    }

    private func checkRequestedFailure(_ request: Request) throws {
        guard let failure = request.failWith, failure.code != 0 else { return }
        let code = RPCStatus.Code(rawValue: Int(failure.code)) ?? .unknown
        throw RequestedFailure(status: RPCStatus(code, failure.message))
    }

    /// Sleeps, but wakes within a few milliseconds of the call's cancellation (client reset,
    /// deadline enforced by the transport, connection loss) or of the task's cancellation.
    private func pause(milliseconds: Int32, context: ServerContext) async throws {
        guard milliseconds > 0 else { return }
        let until = ContinuousClock.now + .milliseconds(Int(milliseconds))
        while true {
            if let reason = context.cancellation { throw reason }
            let left = until - ContinuousClock.now
            if left <= .zero { return }
            try await Task.sleep(for: min(left, .milliseconds(5)))
        }
    }
}
