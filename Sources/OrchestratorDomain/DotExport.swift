/// Renders a graph in Graphviz DOT (`dot -Tsvg`), critical path in red.
public enum DotExport {
    public static func render(_ graph: ValidatedDag, criticalPath: CriticalPath? = nil, name: String = "workflow") -> String {
        let index = graph.index
        var onPath = [Bool](repeating: false, count: index.taskCount)
        var pathEdges = Set<Int64>()
        if let ids = criticalPath?.ids {
            for id in ids { onPath[Int(id)] = true }
            for (a, b) in zip(ids, ids.dropFirst()) { pathEdges.insert(Int64(a) << 32 | Int64(b)) }
        }
        var out = "digraph \(quote(name)) {\n  rankdir=LR;\n  node [shape=box, style=rounded];\n"
        for id in 0..<index.taskCount {
            let task = graph.task(id: id)
            var label = task.key.rawValue
            if task.name != task.key.rawValue { label += "\n" + task.name }
            label += "\ncost \(format(task.estimatedCost))"
            out += "  \(quote(task.key.rawValue)) [label=\(quote(label))"
            if onPath[id] { out += ", color=red, penwidth=2" }
            out += "];\n"
        }
        for u in 0..<index.taskCount {
            for v in index.successors(of: u) {
                out += "  \(quote(index.keys[u].rawValue)) -> \(quote(index.keys[Int(v)].rawValue))"
                if pathEdges.contains(Int64(u) << 32 | Int64(v)) { out += " [color=red, penwidth=2]" }
                out += ";\n"
            }
        }
        return out + "}\n"
    }

    /// A DOT double-quoted string: backslash, quote and newline escaped, other control characters
    /// and invisible ones written out as `\u{1B}` text (raw, a key or description carrying an
    /// escape sequence reached the terminal of whoever printed the graph).
    static func quote(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case _ where scalar.isInvisibleInText:
                out += "\\\\u{" + String(scalar.value, radix: 16, uppercase: true) + "}"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    static func format(_ cost: Double) -> String {
        cost == cost.rounded() && abs(cost) < 1e15 ? String(Int64(cost)) : String(cost)
    }
}
