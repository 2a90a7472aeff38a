import OrchestratorDomain

/// Writes a random DAG as text:
///
///     # orchestrator domain-bench graph v1
///     tasks N edges M seed S
///     task-0 37            (N lines: key, integer cost 1...100)
///     task-5 task-9        (M lines: upstream key, downstream key)
///
/// Edges join two distinct tasks in the order of a random permutation (so the file order is not a
/// topological order), without duplicates, uniformly at random.
enum RandomDagGenerator {
    static func generate(tasks n: Int, edges m: Int, seed: UInt64) -> [UInt8] {
        var rng = SplitMix64(seed: seed)
        var permutation = Array(0..<n)
        for i in stride(from: n - 1, to: 0, by: -1) { permutation.swapAt(i, rng.next(below: i + 1)) }
        var out: [UInt8] = []
        out.reserveCapacity(24 * (n + m))
        append("# orchestrator domain-bench graph v1\ntasks \(n) edges \(m) seed \(seed)\n", to: &out)
        for id in 0..<n {
            appendKey(id, to: &out)
            out.append(UInt8(ascii: " "))
            appendNumber(1 + rng.next(below: 100), to: &out)
            out.append(UInt8(ascii: "\n"))
        }
        var seen = Set<UInt64>(minimumCapacity: m)
        var written = 0
        while written < m {
            var a = rng.next(below: n)
            var b = rng.next(below: n)
            if a == b { continue }
            if a > b { swap(&a, &b) }
            guard seen.insert(UInt64(a) << 32 | UInt64(b)).inserted else { continue }
            appendKey(permutation[a], to: &out)
            out.append(UInt8(ascii: " "))
            appendKey(permutation[b], to: &out)
            out.append(UInt8(ascii: "\n"))
            written += 1
        }
        return out
    }

    private static func append(_ text: String, to out: inout [UInt8]) { out.append(contentsOf: text.utf8) }

    private static func appendKey(_ id: Int, to out: inout [UInt8]) {
        append("task-", to: &out)
        appendNumber(id, to: &out)
    }

    private static func appendNumber(_ value: Int, to out: inout [UInt8]) {
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var count = 0
        var v = value
        withUnsafeMutableBytes(of: &digits) { buffer in
            repeat {
                buffer[count] = UInt8(ascii: "0") + UInt8(v % 10)
                v /= 10
                count += 1
            } while v > 0
            for i in stride(from: count - 1, through: 0, by: -1) { out.append(buffer[i]) }
        }
    }
}
