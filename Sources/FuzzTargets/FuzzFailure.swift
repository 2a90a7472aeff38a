/// Stops the process when an invariant a fuzz target checks does not hold. libFuzzer sees the trap
/// as a crash and saves the input; the replay runner sees it as a failed run.
///
/// A plain `precondition` would do the same in a debug build, but `-Ounchecked` or a future
/// change of build mode could drop it: this never is.
public func fuzzCheck(
    _ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String,
    file: StaticString = #fileID, line: UInt = #line
) {
    if !condition() { fatalError("fuzz invariant violated: \(message())", file: file, line: line) }
}
