/// OTLP `Span.SpanKind`.
public enum SpanKind: Int, Sendable {
    case `internal` = 1
    case server = 2
    case client = 3
    case producer = 4
    case consumer = 5
}

/// OTLP `Status`: unset, ok, or error with a message.
public enum SpanStatus: Sendable, Hashable {
    case unset
    case ok
    case error(String)

    var code: Int {
        switch self {
        case .unset: 0
        case .ok: 1
        case .error: 2
        }
    }
}

/// Something that happened at an instant during a span.
public struct SpanEvent: Sendable, Hashable {
    public var name: String
    public var timeUnixNanos: UInt64
    public var attributes: [String: SpanAttribute]

    public init(name: String, timeUnixNanos: UInt64, attributes: [String: SpanAttribute] = [:]) {
        self.name = name
        self.timeUnixNanos = timeUnixNanos
        self.attributes = attributes
    }
}

/// A reference to a span of another trace (or another part of this one) that is related but
/// not the parent: a dispatch span links to the executor's lease stream, which lives in the
/// executor's own trace.
public struct SpanLink: Sendable, Hashable {
    public var traceID: String
    public var spanID: String
    public var attributes: [String: SpanAttribute]

    public init(traceID: String, spanID: String, attributes: [String: SpanAttribute] = [:]) {
        self.traceID = traceID
        self.spanID = spanID
        self.attributes = attributes
    }
}

/// A finished span: what processors and exporters receive.
public struct SpanData: Sendable, Hashable {
    public var traceID: String
    public var spanID: String
    /// Nil for a trace's root span.
    public var parentSpanID: String?
    public var traceState: String?
    public var name: String
    public var kind: SpanKind
    public var startUnixNanos: UInt64
    public var endUnixNanos: UInt64
    public var attributes: [String: SpanAttribute]
    public var events: [SpanEvent]
    public var links: [SpanLink]
    public var status: SpanStatus

    public init(
        traceID: String, spanID: String, parentSpanID: String?, traceState: String? = nil, name: String, kind: SpanKind,
        startUnixNanos: UInt64, endUnixNanos: UInt64, attributes: [String: SpanAttribute] = [:], events: [SpanEvent] = [],
        links: [SpanLink] = [], status: SpanStatus = .unset
    ) {
        self.traceID = traceID
        self.spanID = spanID
        self.parentSpanID = parentSpanID
        self.traceState = traceState
        self.name = name
        self.kind = kind
        self.startUnixNanos = startUnixNanos
        self.endUnixNanos = endUnixNanos
        self.attributes = attributes
        self.events = events
        self.links = links
        self.status = status
    }
}
