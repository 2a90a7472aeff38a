import Synchronization

/// A span being recorded: started by a `Tracer`, annotated while the work runs, and handed to
/// the tracer's processor once by `end()`.
///
/// A span of an unsampled trace (or of a tracer without a processor) is non-recording: it has a
/// real context, so it still propagates (an executor's assignment names it as parent), but its
/// annotations are ignored and `end()` exports nothing.
///
/// Thread-safety: the mutable record sits behind `state`'s mutex; `end()` takes effect once.
public final class Span: Sendable {
    public let context: SpanContext
    public let parentSpanID: String?
    public let name: String
    public let kind: SpanKind
    public let startUnixNanos: UInt64
    public var isRecording: Bool { processor != nil }

    private struct State {
        var attributes: [String: SpanAttribute]
        var events: [SpanEvent] = []
        var links: [SpanLink]
        var status: SpanStatus = .unset
        var ended = false
    }
    private let state: Mutex<State>
    private let processor: (any SpanProcessor)?
    private let clock: @Sendable () -> UInt64

    init(
        context: SpanContext, parentSpanID: String?, name: String, kind: SpanKind, startUnixNanos: UInt64,
        attributes: [String: SpanAttribute], links: [SpanLink], processor: (any SpanProcessor)?,
        clock: @escaping @Sendable () -> UInt64
    ) {
        self.context = context
        self.parentSpanID = parentSpanID
        self.name = name
        self.kind = kind
        self.startUnixNanos = startUnixNanos
        self.processor = processor
        self.clock = clock
        state = Mutex(State(attributes: processor == nil ? [:] : attributes, links: processor == nil ? [] : links))
    }

    public func setAttribute(_ key: String, _ value: SpanAttribute) {
        guard isRecording else { return }
        state.withLock { $0.attributes[key] = value }
    }

    public func addEvent(_ name: String, attributes: [String: SpanAttribute] = [:]) {
        guard isRecording else { return }
        let now = clock()
        state.withLock { $0.events.append(SpanEvent(name: name, timeUnixNanos: now, attributes: attributes)) }
    }

    public func addLink(_ link: SpanLink) {
        guard isRecording else { return }
        state.withLock { $0.links.append(link) }
    }

    public func setStatus(_ status: SpanStatus) {
        guard isRecording else { return }
        state.withLock { $0.status = status }
    }

    /// Marks the span failed with the error's description, as OpenTelemetry's `recordException` does.
    public func recordError(_ error: any Error) {
        guard isRecording else { return }
        let message = String(describing: error)
        let now = clock()
        state.withLock {
            $0.status = .error(message)
            $0.events.append(SpanEvent(
                name: "exception", timeUnixNanos: now,
                attributes: ["exception.type": .string(String(describing: type(of: error))), "exception.message": .string(message)]))
        }
    }

    /// Ends the span (at `time`, default now) and hands it to the processor. Later calls do nothing.
    public func end(at time: UInt64? = nil) {
        guard let processor else { return }
        let endTime = max(time ?? clock(), startUnixNanos)
        let data: SpanData? = state.withLock { state in
            guard !state.ended else { return nil }
            state.ended = true
            return SpanData(
                traceID: context.traceID, spanID: context.spanID, parentSpanID: parentSpanID, traceState: context.traceState,
                name: name, kind: kind, startUnixNanos: startUnixNanos, endUnixNanos: endTime, attributes: state.attributes,
                events: state.events, links: state.links, status: state.status)
        }
        if let data { processor.onEnd(data) }
    }
}
