public import Logging
public import OrchestratorMetrics
import Synchronization

/// One condition `/readyz` requires, e.g. "database answers and migrations are applied".
public struct ReadinessCheck: Sendable {
    public var name: String
    /// Returns nil when ready, else the reason it is not.
    public var check: @Sendable () async -> String?

    public init(name: String, check: @escaping @Sendable () async -> String?) {
        self.name = name
        self.check = check
    }
}

/// The standard admin endpoints: `/healthz`, `/readyz`, `/metrics` and `/loglevel`.
public enum AdminEndpoints {
    /// - Parameters:
    ///   - readiness: every check must pass within `readinessTimeout` for `/readyz` to answer 200.
    ///   - beforeScrape: refreshes values computed on demand (e.g. database gauges) before `/metrics` renders.
    public static func routes(
        registry: MetricsRegistry, logLevel: LogLevelControl, readiness: [ReadinessCheck], readinessTimeout: Duration = .seconds(2),
        beforeScrape: @escaping @Sendable () async -> Void = {}, logger: Logger
    ) -> AdminRoutes {
        var routes = AdminRoutes()
        routes.add(.get, "/healthz") { _ in .text(200, "ok\n") }
        routes.add(.get, "/readyz") { _ in
            let failures = await withTaskGroup(of: String?.self) { group in
                for check in readiness {
                    group.addTask {
                        guard let outcome = await withTimeout(readinessTimeout, check.check) else {
                            return "\(check.name): no answer within \(readinessTimeout)"
                        }
                        return outcome.map { "\(check.name): \($0)" }
                    }
                }
                var failures: [String] = []
                for await failure in group { if let failure { failures.append(failure) } }
                return failures.sorted()
            }
            if failures.isEmpty {
                return .text(200, "ready\n" + readiness.map { "\($0.name): ok\n" }.joined())
            }
            return .text(503, "not ready\n" + failures.map { $0 + "\n" }.joined())
        }
        routes.add(.get, "/metrics") { _ in
            await beforeScrape()
            return AdminResponse(status: 200, contentType: PrometheusText.contentType, body: Array(registry.render().utf8))
        }
        routes.add(.get, "/loglevel") { _ in .text(200, logLevel.level.rawValue + "\n") }
        routes.add(.put, "/loglevel") { request in
            let text = request.bodyText.trimmingWhitespace().lowercased()
            let level: Logger.Level
            if text == "reset" {
                level = logLevel.initial
            } else if let parsed = Logger.Level(rawValue: text) {
                level = parsed
            } else {
                let names = Logger.Level.allCases.map(\.rawValue).joined(separator: ", ")
                return .text(400, "log level \"\(text)\" is not one of \(names) (or reset)\n")
            }
            let previous = logLevel.level
            guard level != previous else { return .text(200, level.rawValue + "\n") }
            logLevel.level = level
            // At notice, or at the new level when that is quieter (warning, say), so the change
            // always leaves its line: who silenced the server, and when.
            logger.log(level: max(.notice, level), "log level changed", metadata: ["from": "\(previous.rawValue)", "to": "\(level.rawValue)"])
            return .text(200, level.rawValue + "\n")
        }
        return routes
    }
}

extension String {
    func trimmingWhitespace() -> String {
        let scalars = unicodeScalars
        guard let first = scalars.firstIndex(where: { !$0.properties.isWhitespace }),
            let last = scalars.lastIndex(where: { !$0.properties.isWhitespace })
        else { return "" }
        return String(scalars[first...last])
    }
}

/// Runs `body` in a task of its own and returns its result, or nil when `timeout` passes first.
/// The body is cancelled then but not waited for: a probe must answer on time even when the
/// thing it probes (a blocked database connection, say) ignores cancellation.
public func withTimeout<T: Sendable>(_ timeout: Duration, _ body: @escaping @Sendable () async -> T) async -> T? {
    let once = ResumeOnce()
    return await withCheckedContinuation { (continuation: CheckedContinuation<T?, Never>) in
        let work = Task {
            let value = await body()
            if once.claim() { continuation.resume(returning: value) }
        }
        Task {
            try? await Task.sleep(for: timeout)
            if once.claim() {
                work.cancel()
                continuation.resume(returning: nil)
            }
        }
    }
}

/// Lets exactly one of two racing tasks resume a continuation.
private final class ResumeOnce: Sendable {
    private let done = Atomic<Bool>(false)

    func claim() -> Bool {
        !done.exchange(true, ordering: .acquiringAndReleasing)
    }
}
