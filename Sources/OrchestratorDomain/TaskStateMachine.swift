/// One row of the task transition table.
public struct TaskTransitionRule: Hashable, Sendable {
    public var from: [TaskState]
    public var event: TaskEvent
    public var condition: TransitionGuard
    public var to: TaskState
    public var note: String
}

/// A task's state plus the attempt counter the retry rules need. A plain value: `transition` returns the
/// next value and the owner (the store, a test) decides what to do with it.
public struct TaskLifecycle: Hashable, Sendable, Codable {
    public private(set) var state: TaskState
    /// Attempts started so far (leases taken); the current attempt number while leased or running.
    public private(set) var attempt: Int
    public let maxAttempts: Int

    public init(state: TaskState = .pending, attempt: Int = 0, maxAttempts: Int = RetryPolicy.default.maxAttempts) {
        self.state = state
        self.attempt = attempt
        self.maxAttempts = max(1, maxAttempts)
    }

    /// Every legal task transition, in one place. A (state, event) pair not listed here is illegal.
    public static let rules: [TaskTransitionRule] = [
        .init(from: [.pending], event: .dependenciesSatisfied, condition: .always, to: .ready,
              note: "all upstream tasks succeeded"),
        .init(from: [.ready], event: .lease, condition: .attemptsRemain, to: .leased,
              note: "attempt += 1; the attempt number is the lease's fencing token"),
        .init(from: [.leased], event: .start, condition: .always, to: .running, note: ""),
        .init(from: [.leased, .running], event: .succeed, condition: .always, to: .succeeded, note: ""),
        .init(from: [.leased, .running], event: .fail, condition: .attemptsRemain, to: .ready,
              note: "retry after backoff"),
        .init(from: [.leased, .running], event: .fail, condition: .attemptsExhausted, to: .failed, note: ""),
        .init(from: [.leased, .running], event: .failPermanently, condition: .always, to: .failed,
              note: "no retry whatever the attempts left"),
        .init(from: [.leased, .running], event: .leaseExpire, condition: .attemptsRemain, to: .ready,
              note: "retry after backoff"),
        .init(from: [.leased, .running], event: .leaseExpire, condition: .attemptsExhausted, to: .failed, note: ""),
        .init(from: [.pending, .ready, .leased, .running], event: .cancel, condition: .always, to: .cancelled,
              note: "a running attempt is told to stop"),
        .init(from: [.pending, .ready], event: .skip, condition: .always, to: .skipped,
              note: "an upstream task failed or was cancelled"),
    ]

    /// The state after `event`, or a `TransitionError` naming the legal events.
    public func transition(_ event: TaskEvent) throws(TransitionError) -> TaskLifecycle {
        guard let rule = Self.rule(from: state, event: event, attempt: attempt, maxAttempts: maxAttempts) else {
            throw TransitionError(
                machine: "task", state: state.rawValue, event: event.rawValue,
                legalEvents: Self.legalEvents(from: state).map(\.rawValue))
        }
        var next = self
        next.state = rule.to
        if event == .lease { next.attempt += 1 }
        return next
    }

    /// Whether `event` is legal now.
    public func allows(_ event: TaskEvent) -> Bool {
        Self.rule(from: state, event: event, attempt: attempt, maxAttempts: maxAttempts) != nil
    }

    static func rule(from state: TaskState, event: TaskEvent, attempt: Int, maxAttempts: Int) -> TaskTransitionRule? {
        rules.first { rule in
            guard rule.event == event, rule.from.contains(state) else { return false }
            switch rule.condition {
            case .always: return true
            case .attemptsRemain: return attempt < maxAttempts
            case .attemptsExhausted: return attempt >= maxAttempts
            }
        }
    }

    /// The events listed for `state` in the table (ignoring guards), without duplicates.
    public static func legalEvents(from state: TaskState) -> [TaskEvent] {
        var seen: [TaskEvent] = []
        for rule in rules where rule.from.contains(state) && !seen.contains(rule.event) { seen.append(rule.event) }
        return seen
    }

    /// The table as Markdown, the form docs/DOMAIN.md shows (a test keeps the two equal).
    public static func markdownTable() -> String {
        var lines = ["| from | event | guard | to | note |", "|---|---|---|---|---|"]
        for rule in rules {
            let from = rule.from.map(\.rawValue).joined(separator: ", ")
            lines.append("| \(from) | \(rule.event.rawValue) | \(rule.condition.rawValue) | \(rule.to.rawValue) | \(rule.note) |")
        }
        return lines.joined(separator: "\n")
    }
}
