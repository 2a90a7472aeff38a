import Foundation

/// Line-buffered terminal output that is safe to call from any task.
enum Output {
    static func line(_ text: String) {
        FileHandle.standardOutput.write(Data((text + "\n").utf8))
    }

    /// Ends the process at once, the way a crash or SIGKILL would: no goodbye on the stream.
    static func dieNow() -> Never {
        Foundation.exit(137)
    }
}
