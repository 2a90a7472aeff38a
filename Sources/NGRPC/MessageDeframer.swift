/// Reassembles length-prefixed gRPC messages from DATA payloads of any size: a message may span
/// many frames and a frame may hold many messages.
///
/// The length prefix is checked against `maxMessageSize` as soon as it is complete, so an
/// oversized message is rejected before any of its body is buffered. Compressed messages are
/// inflated with `decompressor`, bounded by the same limit (decompression bombs).
struct MessageDeframer {
    enum Failure: Error, Equatable {
        /// The message is larger than the limit.
        case tooLarge(Int)
        /// A compressed message inflates past the limit (inflating stops there: its real size is unknown).
        case inflatesPastLimit
        /// The compressed flag is set but the call has no `grpc-encoding`.
        case compressedWithoutEncoding
        /// The flag byte is neither 0 nor 1.
        case invalidFlag(UInt8)
        /// Inflating failed.
        case corruptCompressedData
    }

    let maxMessageSize: Int
    var decompressor: GZip.Kind?

    private var header: (UInt8, UInt8, UInt8, UInt8, UInt8) = (0, 0, 0, 0, 0)
    private var headerFill = 0
    private var body: [UInt8] = []
    private var bodyLength = 0
    private var compressed = false

    init(maxMessageSize: Int, decompressor: GZip.Kind? = nil) {
        self.maxMessageSize = maxMessageSize
        self.decompressor = decompressor
    }

    /// True when no partial message is buffered (a clean place for the stream to end).
    var isIdle: Bool { headerFill == 0 }

    /// The declared length of the message whose body is partly received (0 when none is, or only
    /// part of its 5-byte prefix is): what the buffer will grow to.
    var partialMessageLength: Int { headerFill == MessageFramer.headerSize ? bodyLength : 0 }

    /// The bytes of that message's body buffered so far.
    var partialBodyBytes: Int { headerFill == MessageFramer.headerSize ? body.count : 0 }

    /// Frees the partial message: the call ended and its remaining bytes will not be read.
    mutating func discard() {
        body = []
        headerFill = 0
    }

    /// Feeds bytes; calls `emit` once per complete message, in order.
    mutating func process(_ bytes: UnsafeRawBufferPointer, emit: ([UInt8]) -> Void) throws(Failure) {
        var offset = 0
        let count = bytes.count
        while offset < count || (headerFill == MessageFramer.headerSize && body.count == bodyLength) {
            if headerFill < MessageFramer.headerSize {
                while headerFill < MessageFramer.headerSize, offset < count {
                    let byte = bytes[offset]
                    switch headerFill {
                    case 0: header.0 = byte
                    case 1: header.1 = byte
                    case 2: header.2 = byte
                    case 3: header.3 = byte
                    default: header.4 = byte
                    }
                    headerFill += 1
                    offset += 1
                }
                guard headerFill == MessageFramer.headerSize else { return }
                try beginMessage()
            }
            let wanted = bodyLength - body.count
            let available = min(wanted, count - offset)
            if available > 0 {
                body.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + available)]))
                offset += available
            }
            if body.count == bodyLength {
                let message = body
                body = []
                headerFill = 0
                emit(try finish(message))
            } else {
                return
            }
        }
    }

    private mutating func beginMessage() throws(Failure) {
        let flag = header.0
        guard flag <= 1 else { throw .invalidFlag(flag) }
        compressed = flag == 1
        if compressed && decompressor == nil { throw .compressedWithoutEncoding }
        bodyLength = Int(header.1) << 24 | Int(header.2) << 16 | Int(header.3) << 8 | Int(header.4)
        // A compressed message is checked here too: its inflated form can only be larger.
        guard bodyLength <= maxMessageSize else { throw .tooLarge(bodyLength) }
        body = []
        // Not the declared length at once: a prefix is 5 bytes, and 1,000 streams declaring 4 MiB
        // each took 4 GB of address space (a server under `ulimit -v` aborted). Past this the
        // buffer grows as the bytes come.
        body.reserveCapacity(min(bodyLength, Self.initialBodyCapacity))
    }

    static let initialBodyCapacity = 64 * 1024

    private func finish(_ message: [UInt8]) throws(Failure) -> [UInt8] {
        guard compressed, let decompressor else { return message }
        switch GZip.inflate(message, kind: decompressor, limit: maxMessageSize) {
        case .success(let bytes): return bytes
        case .failure(.tooLarge): throw .inflatesPastLimit
        case .failure(.corrupt): throw .corruptCompressedData
        }
    }
}
