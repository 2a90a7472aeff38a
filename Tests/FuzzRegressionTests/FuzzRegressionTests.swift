import FuzzTargets
import Testing

/// Every input the fuzz targets keep — their seed corpora and the inputs of crashes found and fixed
/// (Tests/fuzz/regressions/<target>/) — replayed through a normal build, so a fixed crash stays
/// fixed without the fuzzer. A regression that crashes again stops this test process with the
/// target's own message.
@Suite("Fuzz regressions")
struct FuzzRegressionTests {
    struct Target: CustomStringConvertible, Sendable {
        let name: String
        let run: @Sendable ([UInt8]) -> Void
        var description: String { name }
    }

    static let targets = [
        Target(name: FramingTarget.name, run: FramingTarget.run),
        Target(name: RequestDecodingTarget.name, run: RequestDecodingTarget.run),
        Target(name: DagValidationTarget.name, run: DagValidationTarget.run),
        Target(name: JWTTarget.name, run: JWTTarget.run),
    ]

    /// Tests/fuzz, found from this file's path.
    static let fuzzDirectory: String = {
        var parts = "\(#filePath)".split(separator: "/", omittingEmptySubsequences: false)
        parts.removeLast(2)
        return parts.joined(separator: "/") + "/fuzz"
    }()

    @Test("corpus and regressions replay cleanly", arguments: targets)
    func replay(_ target: Target) {
        let corpus = FuzzReplay.inputs(at: "\(Self.fuzzDirectory)/corpus/\(target.name)")
        let regressions = FuzzReplay.inputs(at: "\(Self.fuzzDirectory)/regressions/\(target.name)")
        #expect(!corpus.isEmpty, "\(target.name) has no seed corpus")
        for path in corpus + regressions {
            let bytes = FuzzReplay.read(path)
            #expect(bytes != nil, "cannot read \(path)")
            if let bytes { target.run(bytes) }
        }
    }
}
