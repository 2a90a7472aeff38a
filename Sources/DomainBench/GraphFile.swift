import OrchestratorDomain

/// Parses the text written by `RandomDagGenerator` into a `Dag`.
enum GraphFile {
    struct Header {
        var tasks: Int
        var edges: Int
        var seed: UInt64
    }

    static func parse(_ bytes: [UInt8]) throws -> (Header, Dag) {
        var lines = LineReader(bytes: bytes)
        _ = lines.next()  // comment
        guard let headerLine = lines.next() else { throw FileError(description: "missing header") }
        let fields = headerLine.split(separator: " ")
        guard fields.count == 6, let n = Int(fields[1]), let m = Int(fields[3]), let seed = UInt64(fields[5]) else {
            throw FileError(description: "bad header: \(headerLine)")
        }
        var tasks: [TaskSpec] = []
        tasks.reserveCapacity(n)
        for _ in 0..<n {
            guard let line = lines.nextFields() else { throw FileError(description: "truncated task list") }
            tasks.append(TaskSpec(key: TaskKey(line.0), estimatedCost: Double(line.1) ?? 1))
        }
        var edges: [Edge] = []
        edges.reserveCapacity(m)
        for _ in 0..<m {
            guard let line = lines.nextFields() else { throw FileError(description: "truncated edge list") }
            edges.append(Edge(from: TaskKey(line.0), to: TaskKey(line.1)))
        }
        return (Header(tasks: n, edges: m, seed: seed), Dag(tasks: tasks, edges: edges))
    }

    struct LineReader {
        let bytes: [UInt8]
        var position = 0

        mutating func next() -> String? {
            guard position < bytes.count else { return nil }
            let start = position
            while position < bytes.count && bytes[position] != UInt8(ascii: "\n") { position += 1 }
            defer { position += 1 }
            return String(decoding: bytes[start..<position], as: UTF8.self)
        }

        /// Two space-separated fields of one line.
        mutating func nextFields() -> (String, String)? {
            guard position < bytes.count else { return nil }
            let start = position
            var space = -1
            while position < bytes.count && bytes[position] != UInt8(ascii: "\n") {
                if space < 0 && bytes[position] == UInt8(ascii: " ") { space = position }
                position += 1
            }
            defer { position += 1 }
            guard space > start else { return nil }
            return (String(decoding: bytes[start..<space], as: UTF8.self),
                    String(decoding: bytes[(space + 1)..<position], as: UTF8.self))
        }
    }
}
