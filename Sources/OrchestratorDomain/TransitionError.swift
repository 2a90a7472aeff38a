/// An event that the state machine does not allow from the current state. Never a silent no-op: the
/// caller learns which machine, which state, which event, and what would have been legal.
public struct TransitionError: Error, Hashable, Sendable, CustomStringConvertible {
    /// "task" or "workflow".
    public var machine: String
    public var state: String
    public var event: String
    /// The events that are legal from `state`, in table order.
    public var legalEvents: [String]

    public init(machine: String, state: String, event: String, legalEvents: [String]) {
        self.machine = machine
        self.state = state
        self.event = event
        self.legalEvents = legalEvents
    }

    public var description: String {
        let legal = legalEvents.isEmpty ? "none (terminal state)" : legalEvents.joined(separator: ", ")
        return "illegal \(machine) transition: event `\(event)` is not allowed in state `\(state)`; legal events: \(legal)"
    }
}

/// A condition a transition rule requires besides the source state.
public enum TransitionGuard: String, Hashable, Sendable {
    case always
    /// The attempts used so far are fewer than the retry policy allows.
    case attemptsRemain = "attempts < max"
    /// Every allowed attempt has been used.
    case attemptsExhausted = "attempts = max"
}
