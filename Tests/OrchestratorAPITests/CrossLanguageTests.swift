import OrchestratorAPI
import Testing

/// Checks the Swift encoding against the official Python runtime: CrossLanguageFixtures holds
/// bytes Python produced (tools/codegen/make_fixtures.py) for the values spelled out here.
@Suite("Wire compatibility with Python protobuf")
struct CrossLanguageTests {
    typealias Everything = Orchestrator_Testing_V1_Everything
    typealias Inner = Orchestrator_Testing_V1_Everything.Inner
    typealias TreeNode = Orchestrator_Testing_V1_TreeNode

    static var everything: Everything {
        Everything(
            scalars: Orchestrator_Testing_V1_Scalars(
                fDouble: 3.141592653589793, fFloat: 1.5, fInt32: -123456, fInt64: Int64.min,
                fUint32: UInt32.max, fUint64: UInt64.max, fSint32: Int32.min, fSint64: Int64.max,
                fFixed32: 0xDEAD_BEEF, fFixed64: UInt64.max, fSfixed32: -1, fSfixed64: Int64.min,
                fBool: true, fString: "héllo, 世界 🌍", fBytes: [0, 1, 2, 127, 128, 255]),
            color: .blue,
            mode: .manual,
            inner: Inner(name: "inner", value: -1),
            numbers: [1, -1, Int32.max, Int32.min],
            names: ["a", "", "ü"],
            blobs: [[], [0, 1], [255]],
            inners: [Inner(name: "x", value: 1), Inner()],
            colors: [.red, .green, .unrecognized(7)],
            ratios: [0.5, -1e308, .infinity],
            flags: [true, false, true],
            labels: ["b": "2", "a": "1", "ключ": "значение"],
            innerByID: [-5: Inner(name: "neg"), Int64.max: Inner(value: 42)],
            colorByCode: [1: .red, 99: .unrecognized(42)],
            byFlag: [true: "yes", false: "no"],
            blobByName: ["z": [0]],
            default: "kw",
            type: 3,
            traceID: "abc",
            selfURL: "http://x",
            choice: .choiceInner(Inner(name: "chosen", value: 7)))
    }

    static var tree: TreeNode {
        var child = TreeNode(label: "c1")
        child.extra = .note("n")
        var root = TreeNode(label: "root", left: TreeNode(label: "L", left: TreeNode(label: "LL")), children: [child])
        root.extra = .alternate(TreeNode(label: "alt"))
        return root
    }

    @Test func swiftDecodesPythonBytes() throws {
        #expect(try Everything(serializedBytes: hex(CrossLanguageFixtures.everything)) == Self.everything)
        #expect(try TreeNode(serializedBytes: hex(CrossLanguageFixtures.tree)) == Self.tree)
        #expect(try Everything(serializedBytes: hex(CrossLanguageFixtures.emptyEverything)) == Everything())
    }

    /// Byte equality holds because both sides write fields in number order and map entries
    /// sorted by key (Python's deterministic mode); so Python reads what Swift writes.
    /// protobuf-c leaves a zero key or value out of a map entry where Python writes it (both
    /// read the same), so the byte comparison uses a value without one.
    @Test func swiftEncodesTheSameBytesAsPython() throws {
        var withoutZeroMapFields = Self.everything
        withoutZeroMapFields.byFlag[false] = nil
        // Compared as hex so a failure shows where the encodings part.
        let everything = hexString(try withoutZeroMapFields.serializedBytes())
        let tree = hexString(try Self.tree.serializedBytes())
        #expect(everything == CrossLanguageFixtures.everythingWithoutZeroMapFields)
        #expect(tree == CrossLanguageFixtures.tree)
    }
}

func hex(_ text: String) -> [UInt8] {
    let digits = Array(text.utf8)
    func value(_ digit: UInt8) -> UInt8 { digit <= 57 ? digit - 48 : digit - 87 }
    return stride(from: 0, to: digits.count, by: 2).map { value(digits[$0]) << 4 | value(digits[$0 + 1]) }
}

func hexString(_ bytes: [UInt8]) -> String {
    let digits = Array("0123456789abcdef")
    return String(bytes.flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 0xF)]] })
}
