import GRPCStandardServices
import NGRPC
import OrchestratorAPI
import Testing

@Suite("grpc.health.v1.Health", .timeLimit(.minutes(1)))
struct HealthServiceTests {
    typealias Request = Grpc_Health_V1_HealthCheckRequest
    typealias Response = Grpc_Health_V1_HealthCheckResponse
    typealias Methods = Grpc_Health_V1_HealthMethods

    func router(_ health: HealthService) -> RPCRouter {
        var router = RPCRouter()
        health.register(into: &router)
        return router
    }

    func check(_ router: RPCRouter, _ service: String) async throws -> Response.ServingStatus {
        let sink = try await invoke(router, Methods.check, requests: [Request(service: service)])
        let responses = try sink.decoded(as: Response.self)
        #expect(responses.count == 1)
        return try #require(responses.first).status
    }

    @Test func checkReportsOverallAndPerServiceStatus() async throws {
        let health = HealthService()
        let router = router(health)
        #expect(try await check(router, "") == .serving)
        health.setStatus(service: "orchestrator.v1.Workflows", status: .notServing)
        #expect(try await check(router, "orchestrator.v1.Workflows") == .notServing)
        health.setStatus(service: "orchestrator.v1.Workflows", status: .serving)
        #expect(try await check(router, "orchestrator.v1.Workflows") == .serving)
    }

    @Test func unknownServiceIsNotFound() async throws {
        let router = router(HealthService())
        await #expect(throws: RPCStatus(.notFound, "unknown service \"nope.Service\"")) {
            _ = try await check(router, "nope.Service")
        }
    }

    @Test func listReturnsEveryStatus() async throws {
        let health = HealthService()
        health.setStatus(service: "a.A", status: .notServing)
        let sink = try await invoke(router(health), Methods.list, requests: [Grpc_Health_V1_HealthListRequest()])
        let list = try #require(try sink.decoded(as: Grpc_Health_V1_HealthListResponse.self).first)
        #expect(list.statuses == ["": Response(status: .serving), "a.A": Response(status: .notServing)])
    }

    @Test func shutdownTurnsEverythingNotServingAndHoldsIt() async throws {
        let health = HealthService()
        let router = router(health)
        health.setStatus(service: "a.A", status: .serving)
        health.shutdown()
        health.setStatus(service: "a.A", status: .serving)  // ignored while shut down
        #expect(try await check(router, "") == .notServing)
        #expect(try await check(router, "a.A") == .notServing)
        health.resume()
        #expect(try await check(router, "a.A") == .serving)
    }

    @Test func watchSendsCurrentStatusThenChangesUntilCancelled() async throws {
        let health = HealthService()
        health.setStatus(service: "a.A", status: .notServing)
        let router = router(health)
        let route = try #require(router.route(forPath: Methods.watch.path))
        let sink = InMemorySink()
        let context = makeContext(Methods.watch)
        let call = Task {
            try await route.handler(InMemorySource([try Request(service: "a.A").serializedBytes()]), sink, context)
        }
        await sink.waitForMessages(1)
        health.setStatus(service: "a.A", status: .notServing)  // unchanged: nothing sent
        health.setStatus(service: "a.A", status: .serving)
        await sink.waitForMessages(2)
        #expect(try sink.decoded(as: Response.self).map(\.status) == [.notServing, .serving])
        #expect(health.watcherCount == 1)

        context.cancel(RPCStatus(.cancelled, "client went away"))
        try await call.value
        #expect(health.watcherCount == 0)
        #expect(sink.messages.count == 2)
    }

    @Test func watchOfAnUnknownServiceReportsServiceUnknownAndKeepsWatching() async throws {
        let health = HealthService()
        let router = router(health)
        let route = try #require(router.route(forPath: Methods.watch.path))
        let sink = InMemorySink()
        let call = Task {
            try await route.handler(
                InMemorySource([try Request(service: "later.Service").serializedBytes()]), sink, makeContext(Methods.watch))
        }
        await sink.waitForMessages(1)
        health.setStatus(service: "later.Service", status: .serving)
        await sink.waitForMessages(2)
        health.clearStatus(service: "later.Service")
        await sink.waitForMessages(3)
        #expect(try sink.decoded(as: Response.self).map(\.status) == [.serviceUnknown, .serving, .serviceUnknown])
        call.cancel()  // task cancellation (the transport's other way of ending a handler)
        try await call.value
        #expect(health.watcherCount == 0)
    }
}
