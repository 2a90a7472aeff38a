import FuzzTargets

// libFuzzer's entry point (a build with `-sanitize=fuzzer`, see tools/fuzz); harmless otherwise.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    RequestDecodingTarget.run(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}

// A normal build has no libFuzzer, so it gets a main of its own that replays the files and
// directories named on the command line (corpora, saved crashes). tools/fuzz passes -DFUZZING.
#if !FUZZING
@main
enum Replay {
    static func main() {
        FuzzReplay.run(Array(CommandLine.arguments.dropFirst()), name: RequestDecodingTarget.name, target: RequestDecodingTarget.run)
    }
}
#endif
