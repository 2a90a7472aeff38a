import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Writes whole log lines to a file descriptor (stderr by default), one `write` per line under a
/// lock, so lines from different threads never interleave.
public final class LogLineWriter: Sendable {
    private let descriptor: Int32
    private let lock = Mutex(())

    public init(descriptor: Int32 = 2) {
        self.descriptor = descriptor
    }

    public static let standardError = LogLineWriter(descriptor: 2)

    public func write(_ line: [UInt8]) {
        lock.withLock { _ in
            line.withUnsafeBytes { buffer in
                var offset = 0
                while offset < buffer.count {
                    let written = Glibc.write(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
                    if written > 0 {
                        offset += written
                    } else if written < 0 && errno == EINTR {
                        continue
                    } else {
                        return  // stderr is gone: nothing sensible left to do with a log line
                    }
                }
            }
        }
    }
}
