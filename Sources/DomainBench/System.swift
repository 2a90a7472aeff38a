// The little I/O and process accounting the benchmark needs, straight from Glibc.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

struct FileError: Error, CustomStringConvertible {
    var description: String
}

func readFile(_ path: String) throws -> [UInt8] {
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else { throw FileError(description: "cannot open \(path): errno \(errno)") }
    defer { close(fd) }
    var info = stat()
    guard fstat(fd, &info) == 0 else { throw FileError(description: "cannot stat \(path)") }
    // /proc files report size 0: read until end of file, growing the buffer as needed.
    var bytes = [UInt8](repeating: 0, count: max(Int(info.st_size), 4096))
    var done = 0
    while true {
        if done == bytes.count { bytes += [UInt8](repeating: 0, count: bytes.count) }
        let n = bytes.withUnsafeMutableBytes { buffer in read(fd, buffer.baseAddress! + done, buffer.count - done) }
        guard n >= 0 else { throw FileError(description: "read failed on \(path): errno \(errno)") }
        if n == 0 { break }
        done += n
    }
    bytes.removeLast(bytes.count - done)
    return bytes
}

func writeFile(_ path: String, _ bytes: [UInt8]) throws {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    guard fd >= 0 else { throw FileError(description: "cannot create \(path): errno \(errno)") }
    defer { close(fd) }
    var done = 0
    try bytes.withUnsafeBytes { buffer in
        while done < buffer.count {
            let n = write(fd, buffer.baseAddress! + done, buffer.count - done)
            guard n > 0 else { throw FileError(description: "short write on \(path)") }
            done += n
        }
    }
}

/// Peak resident set size of this process so far, in MiB (Linux reports ru_maxrss in KiB).
func peakRSSMiB() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_maxrss) / 1024
}

/// User plus system CPU time of this process so far, in milliseconds. Unlike wall time it does not
/// grow while other processes hold the CPU, which makes runs on a busy machine comparable.
func cpuMillis() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    let user = Double(usage.ru_utime.tv_sec) * 1000 + Double(usage.ru_utime.tv_usec) / 1000
    let system = Double(usage.ru_stime.tv_sec) * 1000 + Double(usage.ru_stime.tv_usec) / 1000
    return user + system
}

/// Current resident set size in MiB, from /proc/self/statm (pages).
func currentRSSMiB() -> Double {
    guard let bytes = try? readFile("/proc/self/statm") else { return 0 }
    let fields = String(decoding: bytes, as: UTF8.self).split(separator: " ")
    guard fields.count > 1, let pages = Double(fields[1]) else { return 0 }
    return pages * Double(sysconf(Int32(_SC_PAGESIZE))) / (1024 * 1024)
}

func printError(_ message: String) {
    let line = Array((message + "\n").utf8)
    _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
}

func exitProcess(_ code: Int32) -> Never { exit(code) }

func millis(_ d: Duration) -> Double {
    let (s, atto) = d.components
    return Double(s) * 1000 + Double(atto) / 1e15
}

func format(_ x: Double) -> String {
    let r = (x * 10).rounded() / 10
    return r == r.rounded() ? String(Int(r)) + ".0" : String(r)
}
