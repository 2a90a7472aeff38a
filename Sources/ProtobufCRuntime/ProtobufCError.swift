/// Why a protobuf message could not be decoded or encoded.
public struct ProtobufCError: Error, Sendable, Hashable, CustomStringConvertible {
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        public let name: String
        public init(_ name: String) { self.name = name }
        public var description: String { name }

        /// protobuf-c rejected the bytes (truncated, bad wire type, bad length, nesting...).
        public static let malformed = Code("malformed")
        /// A string field held bytes that are not UTF-8 (proto3 requires UTF-8).
        public static let invalidUTF8 = Code("invalidUTF8")
        /// A string to encode held U+0000; protobuf-c strings are NUL-terminated.
        public static let embeddedNUL = Code("embeddedNUL")
        /// The encoder produced a different length than it announced (a bug, never input).
        public static let sizeMismatch = Code("sizeMismatch")
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// The message alone: it is what callers read (in gRPC status messages); `code` is for code.
    public var description: String { message }
}
