import Foundation
import Synchronization

/// Cancel requests sent for one connection and not yet answered by the server.
///
/// A cancel request cancels whatever the backend is running when it arrives, not the statement it
/// was sent for. Sent in the background, one could still be travelling when its statement had
/// ended and the connection had gone back to the pool: it then cancelled the next borrower's
/// statement (found by black-box testing — clients cancelling watches made other callers'
/// SubmitQuery fail INTERNAL and ended executors' lease streams). So the connection runs nothing
/// more until its cancel requests are answered; once PQcancel returns, the server has signalled
/// the backend, which ignores a cancel that finds it idle.
final class PendingCancels: Sendable {
    private let count = Mutex(0)

    /// How long a connection waits for its cancel requests before it is given up instead.
    static let answerTimeout: Duration = .seconds(5)

    func begin() { count.withLock { $0 += 1 } }
    func end() { count.withLock { $0 -= 1 } }

    /// Blocks the calling (database) thread until every cancel request is answered; false when
    /// `timeout` passed first — the connection must not be used again. Polls: cancels are rare
    /// and answered within a millisecond or two on a reachable server.
    func waitUntilAnswered(timeout: Duration = answerTimeout) -> Bool {
        let deadline = ContinuousClock.now + timeout
        while count.withLock({ $0 }) > 0 {
            guard ContinuousClock.now < deadline else { return false }
            Thread.sleep(forTimeInterval: 0.001)
        }
        return true
    }
}
