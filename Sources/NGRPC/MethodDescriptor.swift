/// The four gRPC method shapes.
public enum RPCKind: Sendable, Hashable {
    case unary
    case serverStreaming
    case clientStreaming
    case bidirectionalStreaming

    public var clientStreams: Bool { self == .clientStreaming || self == .bidirectionalStreaming }
    public var serverStreams: Bool { self == .serverStreaming || self == .bidirectionalStreaming }
}

/// Identifies one method: `/package.Service/Method` on the wire.
public struct MethodDescriptor: Sendable, Hashable, CustomStringConvertible {
    /// Fully qualified service name, e.g. `orchestrator.v1.Workflows`.
    public var service: String
    /// Method name, e.g. `SubmitQuery`.
    public var method: String
    public var kind: RPCKind

    public init(service: String, method: String, kind: RPCKind) {
        self.service = service
        self.method = method
        self.kind = kind
    }

    /// The HTTP/2 `:path`.
    public var path: String { "/\(service)/\(method)" }
    public var description: String { path }
}

/// A message type the RPC layer can carry. Generated protobuf wrappers conform to it;
/// the RPC layer itself never looks inside the bytes.
public protocol GRPCMessage: Sendable {
    /// The message's full protobuf name (`orchestrator.v1.SubmitQueryRequest`): what error
    /// messages call it, since clients know their messages by these names, not by Swift types.
    static var grpcMessageName: String { get }
    /// Decodes a message; throws when the bytes are not a valid encoding.
    init(serializedBytes: [UInt8]) throws
    /// Encodes the message.
    func serializedBytes() throws -> [UInt8]
}

extension GRPCMessage {
    /// Hand-written conformers (tests, raw byte messages) are named by their Swift type.
    public static var grpcMessageName: String { String(describing: Self.self) }
}
