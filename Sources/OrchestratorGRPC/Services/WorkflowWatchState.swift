import Synchronization

/// What a workflow watch has seen, shared with the checks `WatchService.follow` calls.
final class WorkflowWatchState: Sendable {
    private let state: Mutex<(finished: Bool, sentFinal: Bool, idlePeriods: Int)>

    init(finished: Bool) { state = Mutex((finished, false, 0)) }

    var finished: Bool { state.withLock { $0.finished } }
    var sentFinal: Bool { state.withLock { $0.sentFinal } }
    func finalDelivered() { state.withLock { $0.finished = true; $0.sentFinal = true } }

    /// Whether to ask if the workflow is still there after this idle period: after every one
    /// once it is known to have finished (only a finished workflow is deleted), after every
    /// `unfinishedEvery`th before — a watch still behind the final event when the workflow went
    /// never learns that it finished.
    func shouldCheckAfterIdlePeriod(unfinishedEvery: Int = 12) -> Bool {
        state.withLock { state in
            state.idlePeriods += 1
            return state.finished || state.idlePeriods % unfinishedEvery == 0
        }
    }
}
