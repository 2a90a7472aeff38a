import OrchestratorApp
import Synchronization

/// An in-memory event log for tests of the tailing logic: events become visible when "committed",
/// in any order, exactly as concurrent transactions make them visible in PostgreSQL.
final class FakeEventStore: EventStore {
    private let committed = Mutex<[StoredEvent]>([])
    /// As PostgreSQL's log since migration 0006 (then commits come in sequence order).
    let sequencesBecomeVisibleInOrder: Bool

    init(sequencesBecomeVisibleInOrder: Bool = false) { self.sequencesBecomeVisibleInOrder = sequencesBecomeVisibleInOrder }

    func commit(_ sequences: [Int64], workflowID: String = "wf") {
        committed.withLock { events in
            for sequence in sequences {
                events.append(StoredEvent(sequence: sequence, workflowID: workflowID, tenant: "t", kind: .taskReady, at: sequence, traceID: "trace"))
            }
            events.sort { $0.sequence < $1.sequence }
        }
    }

    func events(_ query: EventQuery) async throws -> [StoredEvent] {
        committed.withLock { events in
            Array(events.filter { $0.sequence > query.afterSequence && (query.workflowID == nil || $0.workflowID == query.workflowID) }
                .prefix(query.limit))
        }
    }
}

/// Waits until `condition` holds, or `timeout` passes (then returns, and the caller's
/// expectation reports what it saw): tests wait for what they wait for, not a fixed time that a
/// loaded machine can outlast.
func waitUntil(_ timeout: Duration = .seconds(10), _ condition: () -> Bool) async throws {
    let deadline = ContinuousClock.now + timeout
    while !condition(), ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
}

/// Collects what a watcher emitted.
final class Collected: Sendable {
    private let items = Mutex<[Int64]>([])
    func append(_ value: Int64) { items.withLock { $0.append(value) } }
    var values: [Int64] { items.withLock { $0 } }
}
