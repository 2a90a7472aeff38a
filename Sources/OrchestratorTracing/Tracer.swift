#if canImport(Glibc)
    import Glibc
#endif
import Synchronization

/// Receives every finished, sampled span. Must not block: it is called on the thread that ends the span.
public protocol SpanProcessor: Sendable {
    func onEnd(_ span: SpanData)
}

/// Decides whether a new trace is recorded, by trace id, as OpenTelemetry's `TraceIdRatioBased`
/// sampler does: the same trace id gets the same answer in every process that uses the same ratio,
/// so a workflow's later spans (dispatch, in any server) follow its submission's decision.
public struct Sampler: Sendable, Hashable {
    /// Fraction of new traces recorded, in [0, 1].
    public let ratio: Double

    public init(ratio: Double) { self.ratio = min(max(ratio, 0), 1) }

    public static let always = Sampler(ratio: 1)

    public func shouldSample(traceID: String) -> Bool {
        if ratio >= 1 { return true }
        if ratio <= 0 { return false }
        // The low 64 bits of the trace id, as the OpenTelemetry SDKs read them.
        guard traceID.utf8.count == 32, let low = UInt64(traceID.suffix(16), radix: 16) else { return false }
        return Double(low) < ratio * 18_446_744_073_709_551_616.0
    }
}

/// Starts spans. Parents come from the task-local `Tracer.current` unless given explicitly, so
/// nested work (planning inside a submission, a database transaction inside a claim) finds its
/// parent without passing contexts through every signature.
public final class Tracer: Sendable {
    /// The span context of the work the current task is doing, if any.
    @TaskLocal public static var current: SpanContext?

    let processor: (any SpanProcessor)?
    public let sampler: Sampler
    let clock: @Sendable () -> UInt64

    /// - Parameters:
    ///   - processor: receives finished sampled spans; nil records nothing (spans still get ids).
    ///   - sampler: decides for traces that start here or arrive without a sampling decision.
    ///   - clock: wall-clock time in Unix nanoseconds (injectable for tests).
    public init(
        processor: (any SpanProcessor)?, sampler: Sampler = .always,
        clock: @escaping @Sendable () -> UInt64 = Tracer.systemUnixNanos
    ) {
        self.processor = processor
        self.sampler = sampler
        self.clock = clock
    }

    /// A tracer that records nothing.
    public static let disabled = Tracer(processor: nil)

    public var isEnabled: Bool { processor != nil }

    public var nowUnixNanos: UInt64 { clock() }

    /// Starts a span. It is a child of `parent` (default: the task's current span); without a
    /// parent it starts a trace of its own, sampled by `sampler`.
    ///
    /// - Parameters:
    ///   - spanID: a fixed id (a server span keeps the id the transport logged; a workflow's
    ///     submission span has a derived id); random when nil.
    ///   - traceID: the id of the trace a root span starts (the transport's, when it started the
    ///     trace); random when nil. Ignored when there is a parent.
    ///   - sampled: overrides the inherited or sampled decision (an incoming `traceparent`'s flag).
    public func startSpan(
        _ name: String, kind: SpanKind = .internal, parent: SpanContext? = Tracer.current, spanID: String? = nil,
        traceID rootTraceID: String? = nil, sampled: Bool? = nil, startUnixNanos: UInt64? = nil,
        attributes: [String: SpanAttribute] = [:], links: [SpanLink] = []
    ) -> Span {
        let traceID = parent?.traceID ?? rootTraceID ?? TraceIdentifiers.randomTraceID()
        let isSampled = sampled ?? parent?.sampled ?? sampler.shouldSample(traceID: traceID)
        let context = SpanContext(
            traceID: traceID, spanID: spanID ?? TraceIdentifiers.randomSpanID(), sampled: isSampled, traceState: parent?.traceState)
        return Span(
            context: context, parentSpanID: parent?.spanID, name: name, kind: kind, startUnixNanos: startUnixNanos ?? clock(),
            attributes: attributes, links: links, processor: isSampled ? processor : nil, clock: clock)
    }

    /// Runs `body` inside a new span that is the task's current span meanwhile; ends it after,
    /// marking it failed if `body` throws.
    public func withSpan<T>(
        _ name: String, kind: SpanKind = .internal, attributes: [String: SpanAttribute] = [:],
        _ body: (Span) async throws -> T
    ) async rethrows -> T {
        let span = startSpan(name, kind: kind, attributes: attributes)
        return try await run(span, body)
    }

    /// Runs `body` with `span` as the task's current span, then ends it (failed if `body` throws).
    public func run<T>(_ span: Span, _ body: (Span) async throws -> T) async rethrows -> T {
        do {
            let value = try await Tracer.$current.withValue(span.context) { try await body(span) }
            span.end()
            return value
        } catch {
            span.recordError(error)
            span.end()
            throw error
        }
    }

    /// The system's wall clock in Unix nanoseconds.
    @Sendable public static func systemUnixNanos() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
    }
}

/// The process's tracer, installed once at start-up (like swift-log's `LoggingSystem`), so that
/// layers which must not know about configuration (the application services, the database hook)
/// can record spans. Until bootstrapped it is `Tracer.disabled`.
public enum TracingSystem {
    private static let installed = Mutex<Tracer>(Tracer.disabled)

    public static var tracer: Tracer { installed.withLock { $0 } }

    public static func bootstrap(_ tracer: Tracer) {
        installed.withLock { $0 = tracer }
    }
}
