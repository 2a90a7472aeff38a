@_spi(Fuzzing) import NGRPC

/// gRPC message framing as the server receives it: arbitrary bytes, split into DATA payloads in an
/// arbitrary pattern, through the server's deframer with a `grpc-encoding` and a size limit.
///
/// Input: byte 0 picks the encoding (identity, gzip, deflate) and the limit; byte 1 seeds the
/// split pattern; the rest is the stream. Checked besides "never crashes":
/// - the outcome (messages, then the failure if any) does not depend on how the stream is split;
/// - no message is larger than the limit, inflated or not;
/// - without compression, the messages re-framed are exactly the bytes consumed;
/// - every message survives deflate → inflate under the same limit (the codecs agree).
public enum FramingTarget {
    public static let name = "FuzzFraming"

    static let limits = [0, 16, 300, 4096, 4 * 1024 * 1024]

    struct Outcome: Equatable {
        var messages: [[UInt8]] = []
        var failure: FuzzableDeframer.Failure?
        var idle = true
    }

    public static func run(_ data: [UInt8]) {
        var input = FuzzInput(data)
        let selector = input.byte()
        let encoding: FuzzableDeframer.Encoding? = [nil, .gzip, .deflate][Int(selector) % 3]
        let limit = limits[Int(selector / 3) % limits.count]
        let seed = input.byte()
        let stream = input.rest()

        let whole = deframe(stream, chunkSizes: [max(1, stream.count)], limit: limit, encoding: encoding)
        let split = deframe(stream, chunkSizes: pattern(seed), limit: limit, encoding: encoding)
        fuzzCheck(whole == split, "splitting the stream changed the outcome: \(summary(whole)) vs \(summary(split))")

        for message in whole.messages {
            fuzzCheck(message.count <= limit, "a \(message.count)-byte message passed the \(limit)-byte limit")
        }
        if encoding == nil {
            let reframed = whole.messages.flatMap { FuzzableDeframer.frame($0) }
            fuzzCheck(reframed.count <= stream.count && Array(stream.prefix(reframed.count)) == reframed,
                      "re-framed messages are not the start of the stream")
            if whole.failure == nil && whole.idle {
                fuzzCheck(reframed.count == stream.count, "an idle deframer left \(stream.count - reframed.count) bytes unaccounted for")
            }
        }
        // The codecs: whatever the server may send compressed, it (and so any client) can read back.
        let codec = encoding ?? .gzip
        for message in whole.messages.prefix(4) + [stream] {
            let packed = FuzzableDeframer.deflate(message, encoding: codec)
            let unpacked = FuzzableDeframer.inflate(packed, encoding: codec, limit: max(limit, message.count))
            fuzzCheck(unpacked == message, "\(codec) round trip of \(message.count) bytes failed")
            if message.count > 0 {
                fuzzCheck(FuzzableDeframer.inflate(packed, encoding: codec, limit: message.count - 1) == nil,
                          "inflating \(message.count) bytes passed a limit of \(message.count - 1)")
            }
        }
    }

    /// Chunk sizes from 1 to 64 bytes, cycling, derived from one byte.
    static func pattern(_ seed: UInt8) -> [Int] {
        var state = UInt32(seed) &* 2_654_435_761 | 1
        return (0..<7).map { _ in
            state = state &* 1_103_515_245 &+ 12_345
            return Int(state >> 16) % 64 + 1
        }
    }

    static func deframe(_ stream: [UInt8], chunkSizes: [Int], limit: Int, encoding: FuzzableDeframer.Encoding?) -> Outcome {
        var deframer = FuzzableDeframer(maxMessageSize: limit, encoding: encoding)
        var outcome = Outcome()
        stream.withUnsafeBytes { bytes in
            var offset = 0
            var turn = 0
            while offset < bytes.count {
                let size = min(chunkSizes[turn % chunkSizes.count], bytes.count - offset)
                turn += 1
                do throws(FuzzableDeframer.Failure) {
                    try deframer.process(UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + size)])) {
                        outcome.messages.append($0)
                    }
                } catch {
                    outcome.failure = error
                    return
                }
                offset += size
            }
        }
        outcome.idle = deframer.isIdle
        return outcome
    }

    static func summary(_ outcome: Outcome) -> String {
        "\(outcome.messages.count) messages (\(outcome.messages.map(\.count))), failure \(outcome.failure.map { "\($0)" } ?? "none"), idle \(outcome.idle)"
    }
}
