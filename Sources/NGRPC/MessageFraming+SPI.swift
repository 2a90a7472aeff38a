/// The message framing and `grpc-encoding` codecs, exposed to the fuzz targets (Sources/FuzzFraming)
/// under the `Fuzzing` SPI so that they drive exactly the code the server runs, while the types stay
/// internal to everyone else. Import with `@_spi(Fuzzing) import NGRPC`.
@_spi(Fuzzing) public struct FuzzableDeframer {
    /// How one `process` call ended.
    public enum Failure: Error, Equatable {
        case tooLarge(Int)
        case inflatesPastLimit
        case compressedWithoutEncoding
        case invalidFlag(UInt8)
        case corruptCompressedData
    }

    /// `grpc-encoding` of the call; nil is `identity`.
    public enum Encoding: Sendable, CaseIterable {
        case gzip
        case deflate

        var kind: GZip.Kind { self == .gzip ? .gzip : .deflate }
    }

    private var deframer: MessageDeframer

    public init(maxMessageSize: Int, encoding: Encoding?) {
        deframer = MessageDeframer(maxMessageSize: maxMessageSize, decompressor: encoding?.kind)
    }

    /// True when no partial message is buffered.
    public var isIdle: Bool { deframer.isIdle }

    /// Feeds one DATA payload, as `ServerConnection.dataReceived` does.
    public mutating func process(_ bytes: UnsafeRawBufferPointer, emit: ([UInt8]) -> Void) throws(Failure) {
        do {
            try deframer.process(bytes, emit: emit)
        } catch {
            switch error {
            case .tooLarge(let size): throw .tooLarge(size)
            case .inflatesPastLimit: throw .inflatesPastLimit
            case .compressedWithoutEncoding: throw .compressedWithoutEncoding
            case .invalidFlag(let flag): throw .invalidFlag(flag)
            case .corruptCompressedData: throw .corruptCompressedData
            }
        }
    }

    /// `MessageFramer.frame`: the 5-byte prefix and the message.
    public static func frame(_ message: [UInt8], compressed: Bool = false) -> [UInt8] {
        MessageFramer.frame(message, compressed: compressed)
    }

    /// `GZip.deflate`, as the server compresses responses.
    public static func deflate(_ message: [UInt8], encoding: Encoding) -> [UInt8] {
        GZip.deflate(message, kind: encoding.kind)
    }

    /// `GZip.inflate` with the deframer's bound; nil when the data is corrupt or inflates past `limit`.
    public static func inflate(_ data: [UInt8], encoding: Encoding, limit: Int) -> [UInt8]? {
        try? GZip.inflate(data, kind: encoding.kind, limit: limit).get()
    }
}
