import OrchestratorAPI
import Testing

@Suite("Decoding untrusted bytes fails cleanly")
struct MalformedInputTests {
    typealias Everything = Orchestrator_Testing_V1_Everything
    typealias Scalars = Orchestrator_Testing_V1_Scalars

    @Test(
        arguments: [
            [0xFF],  // field 31, wire type 7 (does not exist)
            [0x08],  // tag without its varint
            [0x08, 0x80],  // truncated varint
            [0x08, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01],  // varint longer than 10 bytes
            [0x72, 0x05, 0x61],  // string length past the end
            [0x0A, 0x02, 0x08],  // sub-message length past the end
            [0x00, 0x00],  // field number 0
        ] as [[UInt8]])
    func malformedBytesThrow(_ bytes: [UInt8]) {
        #expect(throws: ProtobufError.self) { try Everything(serializedBytes: bytes) }
    }

    @Test func invalidUTF8InAStringThrows() {
        // Scalars.f_string (14) holding 0xC3 0x28, an invalid two-byte sequence; the error names the field.
        #expect(throws: ProtobufError(.invalidUTF8, "field orchestrator.testing.v1.Scalars.f_string is not valid UTF-8 (proto3 strings must be)")) {
            try Scalars(serializedBytes: [0x72, 0x02, 0xC3, 0x28])
        }
    }

    @Test func embeddedNULCannotBeEncoded() {
        #expect(throws: ProtobufError(.embeddedNUL, "string field contains a NUL character")) {
            try Scalars(fString: "a\u{0}b").serializedBytes()
        }
        #expect(throws: ProtobufError.self) {
            try Everything(labels: ["k\u{0}": "v"]).serializedBytes()
        }
    }

    @Test func unknownFieldsAreSkipped() throws {
        // Field 1000 (varint) before f_sint32 (7) = -3: proto3 parsers skip what they do not know.
        let bytes: [UInt8] = [0xC0, 0x3E, 0x01, 0x38, 0x05]
        #expect(try Scalars(serializedBytes: bytes).fSint32 == -3)
    }

    /// TreeNode nested through field `field` (2 = left, 4 = children) `depth` levels deep.
    static func nested(depth: Int, field: UInt8) -> [UInt8] {
        var inner: [UInt8] = []
        for _ in 0..<depth {
            var length = inner.count
            var prefix: [UInt8] = [field << 3 | 2]
            repeat {
                prefix.append(UInt8(length & 0x7F) | (length > 0x7F ? 0x80 : 0))
                length >>= 7
            } while length > 0
            inner = prefix + inner
        }
        return inner
    }

    @Test(arguments: [2, 4] as [UInt8])
    func deepNestingIsRejectedBeforeProtobufCRecurses(field: UInt8) throws {
        // 50,000 levels (about 300 KB, well under the 4 MiB message limit) overflowed the stack
        // inside protobuf-c before the generated decoder checked nesting.
        #expect(throws: ProtobufError.self) {
            try Orchestrator_Testing_V1_TreeNode(serializedBytes: Self.nested(depth: 50_000, field: field))
        }
        #expect(throws: ProtobufError(.malformed, "sub-messages nest more than 100 levels deep")) {
            try Orchestrator_Testing_V1_TreeNode(serializedBytes: Self.nested(depth: 101, field: field))
        }
        var node = try Orchestrator_Testing_V1_TreeNode(serializedBytes: Self.nested(depth: 100, field: field))
        var levels = 0
        while let next = node.left ?? node.children.first {
            node = next
            levels += 1
        }
        #expect(levels == 100)
    }

    @Test func randomBytesNeverCrash() {
        var generator = SplitMix64(seed: 0x5EED)
        var decoded = 0
        for length in 0..<2_000 {
            let bytes = (0..<(length % 64)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            if (try? Everything(serializedBytes: bytes)) != nil { decoded += 1 }
            _ = try? Orchestrator_Testing_V1_TreeNode(serializedBytes: bytes)
        }
        // Most random inputs are invalid; the point is that none crashed.
        #expect(decoded < 2_000)
    }
}

/// A small deterministic generator so failures reproduce.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
