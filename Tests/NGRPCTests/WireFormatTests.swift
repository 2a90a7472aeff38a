import CNGHTTP2
import Testing

@testable import NGRPC

@Suite("Message framing")
struct MessageFramingTests {
    private func deframe(_ chunks: [[UInt8]], max: Int = 1024) throws -> [[UInt8]] {
        var deframer = MessageDeframer(maxMessageSize: max)
        var out: [[UInt8]] = []
        for chunk in chunks {
            try chunk.withUnsafeBytes { bytes in
                try deframer.process(bytes) { out.append($0) }
            }
        }
        #expect(deframer.isIdle)
        return out
    }

    @Test func frameHasFlagAndBigEndianLength() {
        #expect(MessageFramer.frame([1, 2, 3]) == [0, 0, 0, 0, 3, 1, 2, 3])
        #expect(MessageFramer.frame([], compressed: true) == [1, 0, 0, 0, 0])
        #expect(MessageFramer.frame([UInt8](repeating: 7, count: 0x0102))[0..<5] == [0, 0, 0, 1, 2])
    }

    @Test func messageSplitAcrossEveryByteBoundary() throws {
        let framed = MessageFramer.frame(Array(0..<200).map { UInt8($0) })
        for split in 1..<framed.count {
            let messages = try deframe([Array(framed[..<split]), Array(framed[split...])])
            #expect(messages == [Array(0..<200).map { UInt8($0) }])
        }
        #expect(try deframe(framed.map { [$0] }).count == 1)
    }

    @Test func severalMessagesInOneFrameIncludingEmptyOnes() throws {
        let stream = MessageFramer.frame([9]) + MessageFramer.frame([]) + MessageFramer.frame([1, 2]) + MessageFramer.frame([])
        #expect(try deframe([stream]) == [[9], [], [1, 2], []])
    }

    @Test func oversizedLengthPrefixRejectedBeforeBody() {
        // Only the 5-byte prefix arrives: the limit is enforced without waiting for the body.
        #expect(throws: MessageDeframer.Failure.tooLarge(1025)) {
            _ = try deframe([[0, 0, 0, 4, 1]], max: 1024)
        }
        #expect(throws: Never.self) { _ = try deframe([MessageFramer.frame([UInt8](repeating: 0, count: 1024))]) }
    }

    /// What the receive budget reserves: the declared length while the body is incomplete, nothing
    /// while only part of the prefix has come or once the message is whole.
    @Test func partialMessageLengthIsTheDeclaredLengthWhileTheBodyIsIncomplete() throws {
        var deframer = MessageDeframer(maxMessageSize: 1024)
        var out: [[UInt8]] = []
        let framed = MessageFramer.frame([UInt8](repeating: 3, count: 300)) + MessageFramer.frame([7])
        func feed(_ range: Range<Int>) throws {
            try Array(framed[range]).withUnsafeBytes { try deframer.process($0) { out.append($0) } }
        }
        try feed(0..<3)
        #expect(deframer.partialMessageLength == 0)
        try feed(3..<5)
        #expect(deframer.partialMessageLength == 300)
        try feed(5..<200)
        #expect(deframer.partialMessageLength == 300)
        try feed(200..<307)
        #expect(out.count == 1 && deframer.partialMessageLength == 0 && !deframer.isIdle)
        deframer.discard()
        #expect(deframer.isIdle && deframer.partialMessageLength == 0)
        try feed(305..<311)
        #expect(out.last == [7] && deframer.isIdle)
    }

    @Test func compressedFlagNeedsEncodingAndFlagMustBeBit() {
        #expect(throws: MessageDeframer.Failure.compressedWithoutEncoding) { _ = try deframe([[1, 0, 0, 0, 0]]) }
        #expect(throws: MessageDeframer.Failure.invalidFlag(2)) { _ = try deframe([[2, 0, 0, 0, 0]]) }
    }

    @Test func gzipRoundTripAndBombGuard() throws {
        let payload = [UInt8](repeating: 65, count: 100_000)
        let compressed = GZip.deflate(payload, kind: .gzip)
        #expect(compressed.count < 1000)
        var deframer = MessageDeframer(maxMessageSize: 200_000, decompressor: .gzip)
        var out: [[UInt8]] = []
        try MessageFramer.frame(compressed, compressed: true).withUnsafeBytes { bytes in
            try deframer.process(bytes) { out.append($0) }
        }
        #expect(out == [payload])
        var small = MessageDeframer(maxMessageSize: 50_000, decompressor: .gzip)
        #expect(throws: MessageDeframer.Failure.inflatesPastLimit) {
            try MessageFramer.frame(compressed, compressed: true).withUnsafeBytes { bytes in
                try small.process(bytes) { _ in }
            }
        }
    }

    /// Several gzip members are one message (as Go's gzip.Reader reads them); bytes after the end
    /// of the compressed data are corrupt (the first member alone used to be the whole message).
    @Test func gzipMembersAreConcatenatedAndTrailingBytesRefused() throws {
        let first = [UInt8]("first member, ".utf8)
        let second = [UInt8](repeating: 66, count: 40_000)
        let members = GZip.deflate(first, kind: .gzip) + GZip.deflate(second, kind: .gzip)
        #expect(try GZip.inflate(members, kind: .gzip, limit: 100_000).get() == first + second)
        #expect(throws: GZip.Failure.tooLarge) { try GZip.inflate(members, kind: .gzip, limit: 30_000).get() }
        #expect(throws: GZip.Failure.corrupt) { try GZip.inflate(GZip.deflate(first, kind: .gzip) + [1, 2, 3], kind: .gzip, limit: 1000).get() }
        #expect(throws: GZip.Failure.corrupt) {
            try GZip.inflate(GZip.deflate(first, kind: .deflate) + [0x78, 0x9c], kind: .deflate, limit: 1000).get()
        }
        // Truncated input stays corrupt.
        let whole = GZip.deflate(second, kind: .gzip)
        #expect(throws: GZip.Failure.corrupt) { try GZip.inflate(Array(whole.dropLast(4)), kind: .gzip, limit: 100_000).get() }
    }
}

@Suite("grpc-timeout")
struct GRPCTimeoutTests {
    @Test(arguments: [
        ("1H", Duration.seconds(3600)), ("2M", .seconds(120)), ("30S", .seconds(30)), ("100m", .milliseconds(100)),
        ("5u", .microseconds(5)), ("99999999n", .nanoseconds(99_999_999)), ("0S", .zero),
    ])
    func parsesValid(_ text: String, _ expected: Duration) {
        #expect(GRPCTimeout.parse(text) == expected)
    }

    @Test(arguments: ["", "S", "123456789S", "10s", "10", "-1S", "1.5S", "10 S", "1x"])
    func rejectsMalformed(_ text: String) {
        #expect(GRPCTimeout.parse(text) == nil)
    }

    @Test func encodesWithinEightDigitsRoundingUp() {
        #expect(GRPCTimeout.encode(.milliseconds(250)) == "250000000n" || GRPCTimeout.encode(.milliseconds(250)) == "250000u")
        for duration in [Duration.milliseconds(250), .seconds(5), .seconds(86_400 * 400), .nanoseconds(1)] {
            let text = GRPCTimeout.encode(duration)
            #expect(text.count <= 9)
            let parsed = GRPCTimeout.parse(text)
            #expect(parsed != nil && parsed! >= duration)
        }
        #expect(GRPCTimeout.encode(.seconds(-1)) == "0n")
    }
}

@Suite("grpc-message percent-encoding")
struct PercentEncodingTests {
    @Test func asciiIsUnchanged() {
        #expect(PercentEncoding.encode("plain message: ok") == "plain message: ok")
    }

    @Test func encodesPercentControlAndNonASCII() {
        #expect(PercentEncoding.encode("100%") == "100%25")
        #expect(PercentEncoding.encode("a\nb") == "a%0Ab")
        #expect(PercentEncoding.encode("✓") == "%E2%9C%93")
    }

    @Test func longMessagesAreCutToFitATrailer() {
        #expect(PercentEncoding.encodeForTrailer("short ✓") == PercentEncoding.encode("short ✓"))
        let id = String(repeating: "x", count: 60_000)
        let long = PercentEncoding.encodeForTrailer("workflow \(id) not found")
        #expect(long.utf8.count <= PercentEncoding.maxEncodedMessageBytes)
        #expect(PercentEncoding.decode(long).hasPrefix("workflow xxxx"))
        #expect(PercentEncoding.decode(long).hasSuffix(" … (message truncated: 60019 bytes)"))
        // Multi-byte characters are never split.
        let wide = PercentEncoding.encodeForTrailer(String(repeating: "é", count: 5_000))
        #expect(wide.utf8.count <= PercentEncoding.maxEncodedMessageBytes)
        #expect(PercentEncoding.decode(wide).hasPrefix("ééé"))
        #expect(!PercentEncoding.decode(wide).contains("\u{FFFD}"))
    }

    @Test func roundTripsAndToleratesMalformedSequences() {
        let text = "état: 50% done\r\n✓"
        #expect(PercentEncoding.decode(PercentEncoding.encode(text)) == text)
        #expect(PercentEncoding.decode("bad %zz and %4") == "bad %zz and %4")
        #expect(PercentEncoding.decode("%41%62") == "Ab")
    }
}

@Suite("base64 metadata")
struct Base64Tests {
    @Test func paddedAndUnpaddedDecode() {
        #expect(Base64.decode("AAH/") == [0, 1, 255])
        #expect(Base64.decode("AAE=") == [0, 1])
        #expect(Base64.decode("AAE") == [0, 1])
        #expect(Base64.decode("AA==") == [0])
        #expect(Base64.decode("AA") == [0])
        #expect(Base64.decode("") == [])
    }

    @Test(arguments: ["A", "AA=A", "A===", "AA*=", "AAAAA", "AAA=="])
    func invalidRejected(_ text: String) {
        #expect(Base64.decode(text) == nil)
    }

    @Test func encodeRoundTrips() {
        for length in 0..<20 {
            let bytes = (0..<length).map { UInt8(truncatingIfNeeded: $0 * 37 + 11) }
            #expect(Base64.decode(Base64.encode(bytes)) == bytes)
            #expect(Base64.decode(Base64.encode(bytes, padded: false)) == bytes)
        }
        #expect(Base64.encode([0, 1]) == "AAE=")
        #expect(Base64.encode([0, 1], padded: false) == "AAE")
    }

    @Test func binaryHeaderValuesDecodeCommaSeparated() {
        #expect(MetadataRules.decodeValues(key: "x-bin", value: "AAE, AA==") == [.binary([0, 1]), .binary([0])])
        #expect(MetadataRules.decodeValues(key: "x-bin", value: "A") == nil)
        #expect(MetadataRules.decodeValues(key: "x", value: "a,b") == [.string("a,b")])
    }
}

@Suite("traceparent")
struct TraceContextTests {
    @Test func parsesValidHeader() throws {
        let context = try #require(
            TraceContext.parse(traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", tracestate: "k=v"))
        #expect(context.traceID == "4bf92f3577b34da6a3ce929d0e0e4736")
        #expect(context.parentSpanID == "00f067aa0ba902b7")
        #expect(context.sampled)
        #expect(context.traceState == "k=v")
        #expect(!context.startedLocally)
        #expect(context.spanID != context.parentSpanID)
    }

    @Test(arguments: [
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01", "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra", "garbage",
        // Upper-case hex is not W3C's HEXDIGLC: invalid, whichever field.
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", "00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0A",
    ])
    func rejectsMalformed(_ header: String) {
        #expect(TraceContext.parse(traceparent: header) == nil)
    }

    @Test func startsTraceWhenAbsent() {
        let context = TraceContext.from(Metadata([("traceparent", "nope")]))
        #expect(context.startedLocally)
        #expect(context.traceID.count == 32)
    }

    /// Trace Context §3.2/§3.3 for headers sent as several fields (found by black-box testing:
    /// only the first of each was read).
    @Test func severalTracestateFieldsAreOneListAndDisagreeingTraceparentsNoContext() {
        let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        for read in [TraceContext.from, TraceContext.forIncomingCall] {
            let joined = read(Metadata([("traceparent", parent), ("tracestate", "a=1"), ("x", "y"), ("tracestate", "b=2")]))
            #expect(joined.traceState == "a=1,b=2")
            #expect(!joined.startedLocally)
            #expect(read(Metadata([("traceparent", parent), ("traceparent", parent)])).traceID == "4bf92f3577b34da6a3ce929d0e0e4736")
            let other = "00-4bf92f3577b34da6a3ce929d0e0e4737-00f067aa0ba902b7-01"
            let disagreeing = read(Metadata([("traceparent", parent), ("traceparent", other), ("tracestate", "a=1")]))
            #expect(disagreeing.startedLocally)
            #expect(disagreeing.traceState == nil)
        }
    }
}

@Suite("Static header lists")
struct StaticHeaderListTests {
    private func pairs(_ fields: UnsafePointer<nghttp2_nv>, _ count: Int) -> [String] {
        (0..<count).map { index in
            let field = fields[index]
            let name = String(decoding: UnsafeBufferPointer(start: field.name, count: field.namelen), as: UTF8.self)
            let value = String(decoding: UnsafeBufferPointer(start: field.value, count: field.valuelen), as: UTF8.self)
            return "\(name): \(value)"
        }
    }

    private func pairs(_ list: StaticHeaderList) -> [String] { pairs(list.fields, list.count) }

    @Test("the response list is what a plain response's header block holds; the OK trailers what addStatus writes")
    func listsMatchTheBlocksTheyReplace() {
        #expect(pairs(.response) == [":status: 200", "content-type: application/grpc", "grpc-accept-encoding: \(GZip.acceptEncodingHeader)"])
        var trailers = HeaderBlock()
        ServerStream.addStatus(.ok, to: &trailers)
        #expect(pairs(.okTrailers) == trailers.withNameValues { pairs($0, $1) })
        #expect(pairs(.okTrailers) == ["grpc-status: 0"])
    }
}
