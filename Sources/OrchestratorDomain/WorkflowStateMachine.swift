/// One row of the workflow transition table.
public struct WorkflowTransitionRule: Hashable, Sendable {
    public var from: [WorkflowState]
    public var event: WorkflowEvent
    public var to: WorkflowState
}

/// A workflow's state as a plain value with one transition table.
public struct WorkflowLifecycle: Hashable, Sendable, Codable {
    public private(set) var state: WorkflowState

    public init(state: WorkflowState = .pending) { self.state = state }

    /// Every legal workflow transition, in one place.
    public static let rules: [WorkflowTransitionRule] = [
        .init(from: [.pending], event: .startPlanning, to: .planning),
        .init(from: [.planning], event: .planAdopted, to: .running),
        .init(from: [.planning], event: .planningFailed, to: .failed),
        .init(from: [.running], event: .graphExtended, to: .running),
        .init(from: [.running], event: .allTasksSucceeded, to: .succeeded),
        .init(from: [.running], event: .taskFailed, to: .failed),
        .init(from: [.pending, .planning, .running], event: .cancel, to: .cancelled),
    ]

    public func transition(_ event: WorkflowEvent) throws(TransitionError) -> WorkflowLifecycle {
        guard let rule = Self.rules.first(where: { $0.event == event && $0.from.contains(state) }) else {
            throw TransitionError(
                machine: "workflow", state: state.rawValue, event: event.rawValue,
                legalEvents: Self.legalEvents(from: state).map(\.rawValue))
        }
        return WorkflowLifecycle(state: rule.to)
    }

    public static func legalEvents(from state: WorkflowState) -> [WorkflowEvent] {
        rules.filter { $0.from.contains(state) }.map(\.event)
    }

    /// The table as Markdown, the form docs/DOMAIN.md shows (a test keeps the two equal).
    public static func markdownTable() -> String {
        var lines = ["| from | event | to |", "|---|---|---|"]
        for rule in rules {
            lines.append("| \(rule.from.map(\.rawValue).joined(separator: ", ")) | \(rule.event.rawValue) | \(rule.to.rawValue) |")
        }
        return lines.joined(separator: "\n")
    }
}
