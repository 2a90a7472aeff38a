/// A dependency: `to` may start only after `from` has succeeded.
public struct Edge: Hashable, Sendable, Codable, CustomStringConvertible {
    public var from: TaskKey
    public var to: TaskKey

    public init(from: TaskKey, to: TaskKey) {
        self.from = from
        self.to = to
    }

    public init(_ from: TaskKey, _ to: TaskKey) { self.init(from: from, to: to) }

    public var description: String { "\(from) → \(to)" }
}
