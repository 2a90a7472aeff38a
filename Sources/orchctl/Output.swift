import Foundation

/// Line-buffered terminal output that is safe to call from any task.
enum Output {
    static func line(_ text: String) {
        var bytes = Array(text.utf8)
        bytes.append(UInt8(ascii: "\n"))
        writeStandardOutput(bytes)
    }

    /// A line for the person at the terminal, not for a pipeline: on standard error.
    static func note(_ text: String) {
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }

    /// Ends the process at once, the way a crash or SIGKILL would: no goodbye on the stream.
    static func dieNow() -> Never {
        Foundation.exit(137)
    }

    /// Run at exit: text printed through stdio (ArgumentParser's `--version` and `--help`; the
    /// commands' own output goes through `writeStandardOutput`) is flushed here, and a failed
    /// write ends the process with 74 and the reason, as `writeStandardOutput` does.
    static func exitFailingIfStandardOutputFailed() {
        // All streams (`stdout` itself is a C global Swift 6 will not read): a write that failed
        // earlier leaves its bytes buffered, so this flush fails too.
        guard fflush(nil) != 0 else { return }
        let reason = errno == 0 ? "write error" : String(cString: strerror(errno))
        FileHandle.standardError.write(Data("orchctl: cannot write to standard output: \(reason)\n".utf8))
        _exit(74)  // EX_IOERR; `exit` from an exit handler is undefined
    }

    /// Writes all of `bytes` to standard output. The gRPC transport ignores SIGPIPE, so a reader
    /// that went away (`orchctl list | head`) shows up as EPIPE here; `FileHandle.write` trapped
    /// on it with a crash report. The process now ends as `cat` would in that pipeline: killed by
    /// SIGPIPE, silently.
    private static func writeStandardOutput(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = write(STDOUT_FILENO, buffer.baseAddress! + offset, buffer.count - offset)
                if written >= 0 {
                    offset += written
                    continue
                }
                switch errno {
                case EINTR:
                    continue
                case EAGAIN:
                    // A non-blocking descriptor inherited from the parent: wait until it drains.
                    var ready = pollfd(fd: STDOUT_FILENO, events: Int16(POLLOUT), revents: 0)
                    _ = poll(&ready, 1, -1)
                case EPIPE:
                    signal(SIGPIPE, SIG_DFL)
                    raise(SIGPIPE)
                    Foundation.exit(141)  // not reached: SIGPIPE's default action ends the process
                default:
                    // Standard output failed some other way (a full disk, a closed descriptor):
                    // say so on standard error, and the exit status says it failed.
                    let reason = String(cString: strerror(errno))
                    FileHandle.standardError.write(Data("orchctl: cannot write to standard output: \(reason)\n".utf8))
                    Foundation.exit(74)  // EX_IOERR
                }
            }
        }
    }
}
