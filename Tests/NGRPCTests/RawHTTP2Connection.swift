import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A bare TCP connection speaking hand-made HTTP/2 frames, for tests that must misbehave in ways
/// no real client does (floods, bad prefaces). Blocking I/O with a receive timeout; test use only.
/// Used by one test at a time (hence `@unchecked Sendable`); its blocking reads run on a thread of
/// their own, never on the Swift pool, whose two threads the servers under test need.
final class RawHTTP2Connection: @unchecked Sendable {
    struct Frame {
        var type: UInt8
        var flags: UInt8
        var stream: UInt32
        var payload: [UInt8]
    }

    static let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)
    private let fd: Int32
    private var buffer: [UInt8] = []

    init(port: Int) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard result == 0 else { throw POSIXError(.ECONNREFUSED) }
        var timeout = timeval(tv_sec: 0, tv_usec: 200_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(fd) }

    static func frame(type: UInt8, flags: UInt8 = 0, stream: UInt32 = 0, payload: [UInt8] = []) -> [UInt8] {
        let length = payload.count
        return [UInt8(length >> 16 & 0xff), UInt8(length >> 8 & 0xff), UInt8(length & 0xff), type, flags,
            UInt8(stream >> 24 & 0x7f), UInt8(stream >> 16 & 0xff), UInt8(stream >> 8 & 0xff), UInt8(stream & 0xff)]
            + payload
    }

    /// Writes everything; false when the server has closed the connection.
    @discardableResult
    func send(_ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if written <= 0 { return false }
            offset += written
        }
        return true
    }

    /// Frames received until the server closes or `timeout` passes; `closed` tells which. Waits on
    /// a dedicated thread: blocking a pool thread for seconds starved every test running beside it
    /// (deadline tests saw 3 s instead of < 2 s in CI rehearsal).
    func readFrames(timeout: Duration) async -> (frames: [Frame], closed: Bool) {
        await withCheckedContinuation { continuation in
            Thread.detachNewThread { continuation.resume(returning: self.readFramesBlocking(timeout: timeout)) }
        }
    }

    private func readFramesBlocking(timeout: Duration) -> (frames: [Frame], closed: Bool) {
        let deadline = ContinuousClock.now + timeout
        var closed = false
        var chunk = [UInt8](repeating: 0, count: 65536)
        while ContinuousClock.now < deadline {
            let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count == 0 {
                closed = true
                break
            }
            if count < 0 {
                if errno == EAGAIN || errno == EWOULDBLOCK { continue }
                closed = true
                break
            }
            buffer += chunk[0..<count]
        }
        var frames: [Frame] = []
        var offset = 0
        while buffer.count - offset >= 9 {
            let length = Int(buffer[offset]) << 16 | Int(buffer[offset + 1]) << 8 | Int(buffer[offset + 2])
            guard buffer.count - offset >= 9 + length else { break }
            let stream = UInt32(buffer[offset + 5] & 0x7f) << 24 | UInt32(buffer[offset + 6]) << 16
                | UInt32(buffer[offset + 7]) << 8 | UInt32(buffer[offset + 8])
            frames.append(Frame(type: buffer[offset + 3], flags: buffer[offset + 4], stream: stream,
                payload: Array(buffer[(offset + 9)..<(offset + 9 + length)])))
            offset += 9 + length
        }
        buffer.removeFirst(offset)
        return (frames, closed)
    }
}

extension RawHTTP2Connection.Frame {
    static let goAway: UInt8 = 7

    /// (error code, debug data) of a GOAWAY frame.
    var goAwayDetails: (code: UInt32, debug: String)? {
        guard type == Self.goAway, payload.count >= 8 else { return nil }
        let code = UInt32(payload[4]) << 24 | UInt32(payload[5]) << 16 | UInt32(payload[6]) << 8 | UInt32(payload[7])
        return (code, String(decoding: payload[8...], as: UTF8.self))
    }
}
