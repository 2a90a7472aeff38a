public import NGRPC
public import OrchestratorAPI
import Synchronization

/// `grpc.health.v1.Health` (https://github.com/grpc/grpc/blob/master/doc/health-checking.md).
///
/// The server owns one instance, registers it, and reports through `setStatus`; "" names the
/// server as a whole and starts SERVING. `shutdown()` turns every service NOT_SERVING (and keeps
/// it so) while the server drains.
///
/// Thread-safety: all state sits behind `state`'s mutex; watchers are woken through their
/// `AsyncStream` continuations, outside the lock.
public final class HealthService: Grpc_Health_V1_HealthProvider {
    public typealias Status = Grpc_Health_V1_HealthCheckResponse.ServingStatus

    /// `List` answers RESOURCE_EXHAUSTED past this many services, as grpc-go does.
    public static let maxListedServices = 100

    private struct State {
        var statuses: [String: Status]
        var watchers: [String: [UInt64: AsyncStream<Status>.Continuation]] = [:]
        var nextWatcherID: UInt64 = 0
        var isShutDown = false
    }

    private let state: Mutex<State>

    /// - Parameter overallStatus: the status of "" (the whole server) to start with.
    public init(overallStatus: Status = .serving) {
        state = Mutex(State(statuses: ["": overallStatus]))
    }

    /// Sets the status of `service` ("" for the whole server) and tells its watchers.
    /// Ignored after `shutdown()` until `resume()`, so a late report cannot undo draining.
    public func setStatus(service: String, status: Status) {
        let watchers = state.withLock { state -> [AsyncStream<Status>.Continuation] in
            guard !state.isShutDown else { return [] }
            state.statuses[service] = status
            return Array((state.watchers[service] ?? [:]).values)
        }
        for watcher in watchers { watcher.yield(status) }
    }

    /// Forgets `service`: Check answers NOT_FOUND again and watchers see SERVICE_UNKNOWN.
    public func clearStatus(service: String) {
        let watchers = state.withLock { state -> [AsyncStream<Status>.Continuation] in
            guard state.statuses.removeValue(forKey: service) != nil else { return [] }
            return Array((state.watchers[service] ?? [:]).values)
        }
        for watcher in watchers { watcher.yield(.serviceUnknown) }
    }

    /// The current status of `service`, nil when unknown.
    public func status(of service: String) -> Status? {
        state.withLock { $0.statuses[service] }
    }

    /// Marks every known service NOT_SERVING and ignores `setStatus` until `resume()`.
    public func shutdown() { transitionAll(to: .notServing, shutDown: true) }

    /// Marks every known service SERVING again and accepts `setStatus`.
    public func resume() { transitionAll(to: .serving, shutDown: false) }

    private func transitionAll(to status: Status, shutDown: Bool) {
        let watchers = state.withLock { state -> [AsyncStream<Status>.Continuation] in
            state.isShutDown = shutDown
            for service in state.statuses.keys { state.statuses[service] = status }
            return state.statuses.keys.flatMap { (state.watchers[$0] ?? [:]).values }
        }
        for watcher in watchers {
            watcher.yield(status)
            // On shutdown a watch ends once NOT_SERVING is sent: an open Watch held the drain for
            // the whole grace period, with the listener already closed (found by black-box testing).
            if shutDown { watcher.finish() }
        }
    }

    // MARK: Grpc_Health_V1_HealthProvider

    public func check(_ request: Grpc_Health_V1_HealthCheckRequest, context: ServerContext) async throws
        -> Grpc_Health_V1_HealthCheckResponse
    {
        guard let status = status(of: request.service) else {
            throw RPCStatus(.notFound, "unknown service \"\(request.service)\"")
        }
        return Grpc_Health_V1_HealthCheckResponse(status: status)
    }

    public func list(_ request: Grpc_Health_V1_HealthListRequest, context: ServerContext) async throws -> Grpc_Health_V1_HealthListResponse
    {
        let statuses = state.withLock { $0.statuses }
        guard statuses.count <= Self.maxListedServices else {
            throw RPCStatus(.resourceExhausted, "server health list exceeds \(Self.maxListedServices) services")
        }
        return Grpc_Health_V1_HealthListResponse(statuses: statuses.mapValues { Grpc_Health_V1_HealthCheckResponse(status: $0) })
    }

    /// Sends the current status (SERVICE_UNKNOWN for an unknown service, without ending the
    /// call), then each change, until the call is cancelled. Changes that arrive faster than
    /// the client reads collapse to the latest, which the protocol allows.
    public func watch(
        _ request: Grpc_Health_V1_HealthCheckRequest, responses: RPCResponseWriter<Grpc_Health_V1_HealthCheckResponse>,
        context: ServerContext
    ) async throws {
        let (updates, continuation) = AsyncStream.makeStream(of: Status.self, bufferingPolicy: .bufferingNewest(1))
        let service = request.service
        let id = state.withLock { state -> UInt64 in
            let id = state.nextWatcherID
            state.nextWatcherID += 1
            state.watchers[service, default: [:]][id] = continuation
            continuation.yield(state.statuses[service] ?? .serviceUnknown)
            return id
        }
        defer {
            state.withLock { state in
                state.watchers[service]?[id] = nil
                if state.watchers[service]?.isEmpty == true { state.watchers[service] = nil }
            }
            continuation.finish()
        }
        context.onCancel { continuation.finish() }

        var lastSent: Status?
        for await status in updates where status != lastSent {
            try await responses.write(Grpc_Health_V1_HealthCheckResponse(status: status))
            lastSent = status
        }
        if state.withLock({ $0.isShutDown }) {
            throw RPCStatus(.unavailable, "the server is shutting down; watch again once it is back")
        }
    }

    /// Number of open Watch calls (for tests and metrics).
    public var watcherCount: Int {
        state.withLock { $0.watchers.values.reduce(0) { $0 + $1.count } }
    }
}
