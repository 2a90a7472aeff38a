import GRPCCore

/// Passes message bytes through untouched, so the peer needs no protobuf code generation.
///
/// This gives the peer a slight advantage in `tools/bench rpc`: our server decodes the
/// EchoRequest and encodes an EchoResponse through protobuf-c on every call, the peer only copies.
struct RawBytesSerializer: MessageSerializer {
    func serialize<Bytes: GRPCContiguousBytes>(_ message: [UInt8]) throws -> Bytes {
        Bytes(message)
    }
}

struct RawBytesDeserializer: MessageDeserializer {
    func deserialize<Bytes: GRPCContiguousBytes>(_ serializedMessageBytes: Bytes) throws -> [UInt8] {
        serializedMessageBytes.withUnsafeBytes { Array($0) }
    }
}
