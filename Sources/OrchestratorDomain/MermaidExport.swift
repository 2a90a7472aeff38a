/// Renders a graph as a Mermaid flowchart (GitHub and most Markdown viewers draw it), critical path
/// highlighted. Node ids are `t<id>` so that any key is safe; keys appear only in quoted labels.
public enum MermaidExport {
    public static func render(_ graph: ValidatedDag, criticalPath: CriticalPath? = nil) -> String {
        let index = graph.index
        var lines = ["flowchart LR"]
        for id in 0..<index.taskCount {
            let task = graph.task(id: id)
            var label = escape(task.key.rawValue)
            if task.name != task.key.rawValue { label += "<br/>" + escape(task.name) }
            lines.append("  t\(id)[\"\(label)\"]")
        }
        for u in 0..<index.taskCount {
            for v in index.successors(of: u) { lines.append("  t\(u) --> t\(v)") }
        }
        if let path = criticalPath, !path.ids.isEmpty {
            lines.append("  classDef critical stroke:#d33,stroke-width:3px")
            lines.append("  class \(path.ids.map { "t\($0)" }.joined(separator: ",")) critical")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Mermaid labels take HTML entities; quotes and angle brackets would otherwise end or break
    /// them, a `#` or `&` would start an entity (a name holding `#quot;` or `&amp;` rendered as a
    /// quote or an ampersand; found by black-box testing), and control
    /// and invisible characters are written as entities so none reaches a terminal raw.
    static func escape(_ text: String) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "#quot;"
            case "<": out += "#lt;"
            case ">": out += "#gt;"
            case "#": out += "#35;"
            case "&": out += "#amp;"
            case "\n": out += "<br/>"
            case _ where scalar.isInvisibleInText: out += "#\(scalar.value);"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}
