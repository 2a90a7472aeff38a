/// Shape of a graph: sizes, fan-in/fan-out, sources, sinks and isolated tasks.
public struct GraphStatistics: Hashable, Sendable {
    public var taskCount: Int
    public var edgeCount: Int
    /// Tasks with no upstream task (they start first).
    public var sourceCount: Int
    /// Tasks with no downstream task.
    public var sinkCount: Int
    /// Tasks with no edge at all, in input order.
    public var isolatedTasks: [TaskKey]
    public var maxFanIn: Int
    /// The first task (in input order) with `maxFanIn` upstream tasks.
    public var maxFanInTask: TaskKey?
    public var maxFanOut: Int
    public var maxFanOutTask: TaskKey?
    /// Edges per task (equal for fan-in and fan-out).
    public var meanDegree: Double
    /// `fanOutHistogram[k]` = number of tasks whose fan-out is in bucket k: 0, 1, 2–3, 4–7, 8–15, … .
    public var fanOutHistogram: [Int]
    public var fanInHistogram: [Int]

    public init(_ graph: ValidatedDag) {
        let index = graph.index
        let n = index.taskCount
        taskCount = n
        edgeCount = index.edgeCount
        sourceCount = 0
        sinkCount = 0
        isolatedTasks = []
        maxFanIn = 0
        maxFanOut = 0
        meanDegree = n == 0 ? 0 : Double(index.edgeCount) / Double(n)
        fanOutHistogram = []
        fanInHistogram = []
        for id in 0..<n {
            let fanIn = index.inDegree(of: id)
            let fanOut = index.outDegree(of: id)
            if fanIn == 0 { sourceCount += 1 }
            if fanOut == 0 { sinkCount += 1 }
            if fanIn == 0 && fanOut == 0 { isolatedTasks.append(index.keys[id]) }
            if fanIn > maxFanIn || maxFanInTask == nil { maxFanIn = fanIn; maxFanInTask = index.keys[id] }
            if fanOut > maxFanOut || maxFanOutTask == nil { maxFanOut = fanOut; maxFanOutTask = index.keys[id] }
            Self.count(fanOut, into: &fanOutHistogram)
            Self.count(fanIn, into: &fanInHistogram)
        }
    }

    /// Bucket 0 holds 0, bucket k ≥ 1 holds 2^(k-1) ..< 2^k.
    static func bucket(_ degree: Int) -> Int { degree == 0 ? 0 : Int.bitWidth - degree.leadingZeroBitCount }

    private static func count(_ degree: Int, into histogram: inout [Int]) {
        let b = bucket(degree)
        if histogram.count <= b { histogram += [Int](repeating: 0, count: b + 1 - histogram.count) }
        histogram[b] += 1
    }
}
