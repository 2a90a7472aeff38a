/// An attribute value as OTLP knows it (`AnyValue`'s scalar cases).
public enum SpanAttribute: Sendable, Hashable {
    case string(String)
    case int(Int64)
    case double(Double)
    case bool(Bool)
}

extension SpanAttribute: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByFloatLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int64) { self = .int(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
}

extension SpanAttribute: ExpressibleByStringInterpolation {}

extension SpanAttribute {
    public static func int(_ value: Int) -> SpanAttribute { .int(Int64(value)) }
}
