internal import CGeneratedProtos
import Glibc
internal import CProtobufC
public import NGRPC

/// Bounds every `string` field of every request, at any depth (map keys and values included),
/// by reading the serialized request against its protobuf-c descriptor before the handler decodes
/// it. One rule covers every field that may end up stored, including fields added to the protos
/// later; `bytes` fields are left to the message-size limit.
///
/// It also refuses strings containing U+0000. Protobuf allows it, but protobuf-c hands strings over
/// NUL-terminated, so everything after it would be silently dropped (a task key `a\0b` stored as
/// `a`), and PostgreSQL's text and jsonb cannot hold it either.
///
/// It also bounds the entries of every repeated message field in one message (`maxEntries`; Edge
/// lists `maxEdgeEntries`): an empty TaskSpec is 2 bytes on the wire but hundreds once decoded,
/// so a 4 MiB request of 2 million of them took 1.8 GB and seconds of decoding before validation
/// refused the task count (found by black-box testing).
///
/// The walk is linear in the message size and allocates nothing. Malformed input stops the walk
/// quietly: the generated decoder then rejects the message with its own error.
public struct StringLengthGuard: Sendable {
    /// Longest string accepted, in UTF-8 bytes.
    public let maxBytes: Int
    /// Most entries of one repeated message field in one message (the DAG task limit).
    public let maxEntries: Int
    /// The same for lists of `Edge` (the DAG edge limit).
    public let maxEdgeEntries: Int
    private let inputs: [String: Descriptor]

    /// A protobuf-c message descriptor (static C data, valid for the process's lifetime).
    struct Descriptor: @unchecked Sendable {
        let pointer: UnsafePointer<ProtobufCMessageDescriptor>
    }

    /// A field whose string is too long or contains U+0000, or a repeated field with too many
    /// entries, for the error message.
    public struct Violation: Sendable, Hashable, CustomStringConvertible {
        public var field: String
        /// Bytes of the string, or (with `isEntryCount`) entries of the list.
        public var length: Int
        public var limit: Int
        /// The string contains U+0000 (its length is then within the limit).
        public var containsNUL = false
        public var isEntryCount = false

        public init(field: String, length: Int, limit: Int, containsNUL: Bool = false, isEntryCount: Bool = false) {
            self.field = field
            self.length = length
            self.limit = limit
            self.containsNUL = containsNUL
            self.isEntryCount = isEntryCount
        }

        public var description: String {
            if isEntryCount {
                return "field \(field) has more than \(limit) entries; the limit (max-dag-tasks, or max-dag-edges for edges) is \(limit)"
            }
            return containsNUL
                ? "field \(field) contains the character U+0000 (NUL), which strings here cannot hold; remove it"
                : "field \(field) is \(length) bytes long; the limit (max-string-length) is \(limit) bytes"
        }
    }

    /// A guard for the methods of orchestrator.v1.Workflows and orchestrator.v1.Executors.
    public init(maxBytes: Int, maxEntries: Int = .max, maxEdgeEntries: Int = .max) {
        self.maxBytes = maxBytes
        self.maxEntries = maxEntries
        self.maxEdgeEntries = maxEdgeEntries
        var inputs: [String: Descriptor] = [:]
        // The descriptors are copied by value; the names and method tables they point to are static C data.
        for service in [orchestrator__v1__workflows__descriptor, orchestrator__v1__executors__descriptor] {
            let name = String(cString: service.name)
            for index in 0..<Int(service.n_methods) {
                let method = service.methods[index]
                inputs["/\(name)/\(String(cString: method.name))"] = Descriptor(pointer: method.input)
            }
        }
        self.inputs = inputs
    }

    /// The first string field over the limit in a serialized `orchestrator.v1.Dag` that did not
    /// arrive as a request — a delegated planner's result — or nil.
    public func checkDag(_ message: [UInt8]) -> Violation? {
        message.withUnsafeBytes { bytes in
            var violation: Violation?
            withUnsafePointer(to: orchestrator__v1__dag__descriptor) { descriptor in
                _ = walk(bytes, descriptor, depth: 0, violation: &violation)
            }
            return violation
        }
    }

    /// Whether requests of `path` are checked (methods of other services are not).
    public func covers(path: String) -> Bool { inputs[path] != nil }

    /// The first string field over the limit in a request of `path`, or nil.
    public func check(_ message: [UInt8], path: String) -> Violation? {
        guard let descriptor = inputs[path] else { return nil }
        return message.withUnsafeBytes { bytes in
            var violation: Violation?
            _ = walk(bytes, descriptor.pointer, depth: 0, violation: &violation)
            return violation
        }
    }

    /// Walks one message; false when the bytes are malformed (the walk stops, see the type comment).
    private func walk(
        _ bytes: UnsafeRawBufferPointer, _ descriptor: UnsafePointer<ProtobufCMessageDescriptor>, depth: Int,
        violation: inout Violation?
    ) -> Bool {
        // Deeper nesting than any of our messages has: protobuf-c refuses it on decode anyway.
        guard depth < 64 else { return true }
        return withUnsafeTemporaryAllocation(of: EntryCount.self, capacity: Self.countedFields) { counts in
            walk(bytes, descriptor, depth: depth, counts: counts, violation: &violation)
        }
    }

    /// Entries seen of one repeated message field of the message being walked.
    private struct EntryCount {
        var number: UInt32
        var count: Int
    }

    /// Repeated message fields counted per message: more than any of ours has.
    private static let countedFields = 8

    private func walk(
        _ bytes: UnsafeRawBufferPointer, _ descriptor: UnsafePointer<ProtobufCMessageDescriptor>, depth: Int,
        counts: UnsafeMutableBufferPointer<EntryCount>, violation: inout Violation?
    ) -> Bool {
        var counted = 0
        var reader = WireReader(bytes: bytes)
        while !reader.isAtEnd {
            guard let key = reader.varint() else { return false }
            let number = UInt32(truncatingIfNeeded: key >> 3)
            switch key & 7 {
            case 0: guard reader.varint() != nil else { return false }
            case 1: guard reader.skip(8) else { return false }
            case 5: guard reader.skip(4) else { return false }
            case 2:
                guard let payload = reader.lengthDelimited() else { return false }
                guard let field = Self.field(number, in: descriptor) else { continue }
                switch field.pointee.type {
                case PROTOBUF_C_TYPE_STRING:
                    if payload.count > maxBytes || payload.contains(0) {
                        violation = Violation(
                            field: "\(String(cString: descriptor.pointee.name)).\(String(cString: field.pointee.name))",
                            length: payload.count, limit: maxBytes, containsNUL: payload.count <= maxBytes)
                        return true
                    }
                case PROTOBUF_C_TYPE_MESSAGE:
                    guard let nested = field.pointee.descriptor else { continue }
                    let nestedDescriptor = nested.assumingMemoryBound(to: ProtobufCMessageDescriptor.self)
                    if field.pointee.label == PROTOBUF_C_LABEL_REPEATED {
                        let limit = strcmp(nestedDescriptor.pointee.name, "orchestrator.v1.Edge") == 0 ? maxEdgeEntries : maxEntries
                        var index = 0
                        while index < counted && counts[index].number != number { index += 1 }
                        if index == counted, counted < counts.count {
                            counts[index] = EntryCount(number: number, count: 0)
                            counted += 1
                        }
                        if index < counted {
                            counts[index].count += 1
                            if counts[index].count > limit {
                                violation = Violation(
                                    field: "\(String(cString: descriptor.pointee.name)).\(String(cString: field.pointee.name))",
                                    length: counts[index].count, limit: limit, isEntryCount: true)
                                return true
                            }
                        }
                    }
                    guard walk(payload, nestedDescriptor, depth: depth + 1, violation: &violation) else { return false }
                    if violation != nil { return true }
                default:
                    continue  // bytes, or a packed repeated scalar
                }
            default:
                return false  // groups (3, 4) are not used by proto3
            }
        }
        return true
    }

    private static func field(_ number: UInt32, in descriptor: UnsafePointer<ProtobufCMessageDescriptor>) -> UnsafePointer<ProtobufCFieldDescriptor>? {
        let fields = descriptor.pointee.fields!
        for index in 0..<Int(descriptor.pointee.n_fields) where fields[index].id == number {
            return fields + index
        }
        return nil
    }
}

/// Reads protobuf wire-format primitives from a buffer.
private struct WireReader {
    let bytes: UnsafeRawBufferPointer
    var offset = 0

    var isAtEnd: Bool { offset >= bytes.count }

    mutating func varint() -> UInt64? {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while offset < bytes.count, shift < 64 {
            let byte = bytes[offset]
            offset += 1
            result |= UInt64(byte & 0x7F) << shift
            if byte < 0x80 { return result }
            shift += 7
        }
        return nil
    }

    mutating func skip(_ count: Int) -> Bool {
        guard bytes.count - offset >= count else { return false }
        offset += count
        return true
    }

    mutating func lengthDelimited() -> UnsafeRawBufferPointer? {
        guard let length = varint(), length <= UInt64(bytes.count - offset) else { return nil }
        let start = offset
        offset += Int(length)
        return UnsafeRawBufferPointer(rebasing: bytes[start..<offset])
    }
}

/// Applies a `StringLengthGuard` to every request message before the handler sees it: a string
/// over the limit (or containing U+0000) ends the call with INVALID_ARGUMENT naming the field, so
/// nothing of that request is stored.
public struct StringLengthInterceptor: ServerInterceptor {
    public let guardrail: StringLengthGuard

    public init(maxBytes: Int, maxEntries: Int = .max, maxEdgeEntries: Int = .max) {
        guardrail = StringLengthGuard(maxBytes: maxBytes, maxEntries: maxEntries, maxEdgeEntries: maxEdgeEntries)
    }

    public func intercept(
        source: any RawMessageSource, sink: any RawMessageSink, context: ServerContext, next: RawHandler
    ) async throws {
        let path = context.method.path
        guard guardrail.covers(path: path) else {
            try await next(source, sink, context)
            return
        }
        try await next(CheckedSource(inner: source, guardrail: guardrail, path: path), sink, context)
    }

    private struct CheckedSource: RawMessageSource {
        let inner: any RawMessageSource
        let guardrail: StringLengthGuard
        let path: String

        func next() async throws -> [UInt8]? {
            guard let message = try await inner.next() else { return nil }
            if let violation = guardrail.check(message, path: path) {
                throw RPCStatus(.invalidArgument, violation.description)
            }
            return message
        }
    }
}
