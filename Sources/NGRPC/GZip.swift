internal import CZlib

/// zlib-backed `grpc-encoding` codecs (`gzip` and `deflate`). Every call is self-contained: the
/// z_stream lives on the stack of one call and is ended before returning.
enum GZip {
    enum Kind: String, Sendable {
        case gzip
        case deflate

        /// zlib window bits: +16 selects the gzip wrapper, plain 15 the zlib wrapper.
        var windowBits: Int32 { self == .gzip ? 15 + 16 : 15 }
    }

    enum Failure: Error { case tooLarge, corrupt }

    /// Encodings this transport accepts, in `grpc-accept-encoding` form.
    static let acceptEncodingHeader = "identity,gzip,deflate"

    static func kind(forEncoding name: some StringProtocol) -> Kind?? {
        switch name {
        case "identity": return .some(nil)
        case "gzip": return .some(.gzip)
        case "deflate": return .some(.deflate)
        default: return nil
        }
    }

    /// Inflates `input`; fails with `.tooLarge` as soon as the output passes `limit` bytes.
    /// A gzip message may hold several members, one after another (RFC 1952 §2.2; Go's
    /// `gzip.Reader` and `gzip -d` read them all): they are inflated as one. Anything else after
    /// the end of the compressed data is corrupt, not ignored: the first member alone used to be
    /// taken as the whole message.
    static func inflate(_ input: [UInt8], kind: Kind, limit: Int) -> Result<[UInt8], Failure> {
        var stream = z_stream()
        guard inflateInit2_(&stream, kind.windowBits, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            return .failure(.corrupt)
        }
        defer { inflateEnd(&stream) }
        var output: [UInt8] = []
        output.reserveCapacity(min(limit, max(64, input.count * 4)))
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)
        return input.withUnsafeBufferPointer { source -> Result<[UInt8], Failure> in
            stream.next_in = UnsafeMutablePointer(mutating: source.baseAddress)
            stream.avail_in = UInt32(source.count)
            while true {
                let status = chunk.withUnsafeMutableBufferPointer { buffer -> Int32 in
                    stream.next_out = buffer.baseAddress
                    stream.avail_out = UInt32(buffer.count)
                    return CZlib.inflate(&stream, Z_NO_FLUSH)
                }
                let produced = chunk.count - Int(stream.avail_out)
                if output.count + produced > limit { return .failure(.tooLarge) }
                output.append(contentsOf: chunk[0..<produced])
                switch status {
                case Z_STREAM_END where stream.avail_in == 0: return .success(output)
                case Z_STREAM_END where kind == .gzip:
                    guard inflateReset(&stream) == Z_OK else { return .failure(.corrupt) }
                    continue
                case Z_STREAM_END: return .failure(.corrupt)
                case Z_OK: continue
                case Z_BUF_ERROR where produced > 0: continue
                default: return .failure(.corrupt)
                }
            }
        }
    }

    /// Deflates `input` with the given wrapper.
    static func deflate(_ input: [UInt8], kind: Kind) -> [UInt8] {
        var stream = z_stream()
        guard deflateInit2_(&stream, Z_DEFAULT_COMPRESSION, Z_DEFLATED, kind.windowBits, 8, Z_DEFAULT_STRATEGY,
            ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK
        else { return input }
        defer { deflateEnd(&stream) }
        let bound = Int(deflateBound(&stream, UInt(input.count))) + 32
        var output = [UInt8](repeating: 0, count: bound)
        let written = input.withUnsafeBufferPointer { source in
            output.withUnsafeMutableBufferPointer { target -> Int in
                stream.next_in = UnsafeMutablePointer(mutating: source.baseAddress)
                stream.avail_in = UInt32(source.count)
                stream.next_out = target.baseAddress
                stream.avail_out = UInt32(target.count)
                _ = CZlib.deflate(&stream, Z_FINISH)
                return target.count - Int(stream.avail_out)
            }
        }
        output.removeSubrange(written...)
        return output
    }
}
