#if canImport(Glibc)
    import Glibc
#endif
internal import CLibevent
internal import CNGRPCShims

/// A plaintext connection's own socket I/O, beside its bufferevent (which still writes what the
/// socket would not take, reports a failed write, and closes the socket).
///
/// Reading: one `recv` into the loop's receive buffer per readable event. The bufferevent's read
/// asked the kernel how much was waiting (`ioctl FIONREAD`) before every read, copied the bytes
/// into an evbuffer and took at most 16 KiB per turn.
///
/// Writing: frames are staged while the bufferevent has nothing queued and written with one
/// `writev` when the loop turn that produced them ends. Through the bufferevent's output every
/// answer cost two `epoll_ctl` calls (write interest added, then dropped once drained) and a
/// second loop turn. Writing at the end of the turn rather than at once keeps the clients a turn
/// answers from waking (and, on a machine they share, taking the cores) while the loop still has
/// reads to do. Together: five system calls per read-and-answer became two.
///
/// Owns its read event and staging evbuffer, not the socket. Loop thread only. TLS connections
/// read and write through their OpenSSL bufferevent and have none.
final class PlainSocket {
    private let socket: Int32
    private let readEvent: OpaquePointer
    private var reading = false
    /// Where `ServerConnection.flush` gathers frames while the bufferevent's output is empty.
    let staging: OpaquePointer

    enum ReadResult {
        case received(Int)
        case wouldBlock
        /// The peer closed its side, or the socket failed.
        case ended
    }

    init?(base: OpaquePointer, socket: Int32, onReadable: event_callback_fn, argument: UnsafeMutableRawPointer) {
        guard let staging = evbuffer_new() else { return nil }
        guard let readEvent = event_new(base, socket, Int16(EV_READ | EV_PERSIST), onReadable, argument) else {
            evbuffer_free(staging)
            return nil
        }
        self.socket = socket
        self.staging = staging
        self.readEvent = readEvent
    }

    deinit {
        event_free(readEvent)
        evbuffer_free(staging)
    }

    func resumeReading() {
        guard !reading else { return }
        reading = true
        event_add(readEvent, nil)
    }

    func pauseReading() {
        guard reading else { return }
        reading = false
        event_del(readEvent)
    }

    /// FIN once everything written so far has been sent; reading goes on.
    func shutdownWrites() {
        _ = Glibc.shutdown(socket, Int32(SHUT_WR))
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) -> ReadResult {
        let count = recv(socket, buffer.baseAddress, buffer.count, 0)
        if count > 0 { return .received(count) }
        if count == 0 { return .ended }
        let error = cngrpc_errno()
        return error == EAGAIN || error == EWOULDBLOCK || error == EINTR ? .wouldBlock : .ended
    }

    /// Writes what is staged (one `writev`) and moves what the socket did not take to `output`.
    func write(handingRestTo output: OpaquePointer) {
        guard evbuffer_get_length(staging) > 0 else { return }
        // -1 is EAGAIN or a failed socket: either way everything moves on, and the bufferevent
        // retries when writable or reports the error through its event callback.
        _ = evbuffer_write(staging, socket)
        if evbuffer_get_length(staging) > 0 {
            evbuffer_add_buffer(output, staging)
        }
    }
}
