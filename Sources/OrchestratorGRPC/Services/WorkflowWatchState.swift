import Synchronization

/// What a workflow watch has seen, shared with the checks `WatchService.follow` calls.
final class WorkflowWatchState: Sendable {
    private let state: Mutex<(finished: Bool, sentFinal: Bool)>

    init(finished: Bool) { state = Mutex((finished, false)) }

    var finished: Bool { state.withLock { $0.finished } }
    var sentFinal: Bool { state.withLock { $0.sentFinal } }
    func finalDelivered() { state.withLock { $0 = (true, true) } }
}
