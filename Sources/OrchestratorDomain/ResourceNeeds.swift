/// What a task needs from the executor that runs it; the dispatcher matches these against what an
/// executor advertises.
public struct ResourceNeeds: Hashable, Sendable, Codable {
    public var cpuMillis: Int
    public var memoryMiB: Int
    public var gpus: Int
    /// Anything else, by name (`tokens-per-minute`, `licences`).
    public var custom: [String: Int]

    public init(cpuMillis: Int = 0, memoryMiB: Int = 0, gpus: Int = 0, custom: [String: Int] = [:]) {
        self.cpuMillis = cpuMillis
        self.memoryMiB = memoryMiB
        self.gpus = gpus
        self.custom = custom
    }

    public static let none = ResourceNeeds()
}
