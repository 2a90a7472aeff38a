internal import CLibevent
import Logging

/// Routes libevent's own messages into the process's logger (label `libevent`) instead of
/// libevent's default, a plain line on stderr: stderr is documented to hold nothing but the
/// configured log format, and a failing accept wrote "[warn] Error from accept() call: Too many
/// open files" there ten million times in 45 s (found by black-box testing; the listeners now
/// also pause on such errors).
public enum LibeventLog {
    /// Installs the callback; idempotent (event loops and the admin server call it before they start).
    public static func install() { _ = installed }

    private static let installed: Bool = {
        event_set_log_callback(libeventLogCallback)
        return true
    }()

    static let logger = Logger(label: "libevent")
}

private func libeventLogCallback(_ severity: Int32, _ message: UnsafePointer<CChar>?) {
    let text = message.map { String(cString: $0) } ?? ""
    switch severity {
    case EVENT_LOG_DEBUG: LibeventLog.logger.debug("\(text)")
    case EVENT_LOG_MSG: LibeventLog.logger.info("\(text)")
    case EVENT_LOG_WARN: LibeventLog.logger.warning("\(text)")
    default: LibeventLog.logger.error("\(text)")
    }
}
