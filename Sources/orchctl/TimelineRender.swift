#if canImport(Glibc)
    import Glibc
#endif
import Foundation

/// Draws a `Timeline` as a waterfall: one line per row, a bar scaled to the terminal's width.
///
/// Bar cells: `░` ready, waiting for an executor; `█` held by an executor (leased until its
/// report); `╳` an attempt that ended without success (failed, lease expired, retried); `·` the
/// retry backoff after it; `│` an instant.
enum TimelineRender {
    static func text(_ timeline: Timeline, width: Int) -> String {
        var lines: [String] = []
        lines.append("workflow \(timeline.workflowID)  \(timeline.state)  \(duration(timeline.spanMs)) total, \(timeline.eventCount) events")
        lines.append("trace_id \(timeline.traceID)")
        let nameWidth = min(28, max(8, timeline.rows.map(\.name.count).max() ?? 8))
        // name | start | duration | bar | attempts/executors
        let fixed = nameWidth + 1 + 9 + 1 + 9 + 2
        let info = timeline.rows.map(Self.info)
        let infoWidth = min(40, info.map(\.count).max() ?? 0)
        let barWidth = max(10, width - fixed - 2 - infoWidth)
        lines.append(pad("", nameWidth) + " " + lpad("start", 9) + " " + lpad("duration", 9) + "  " + pad("0", barWidth - 6)
                     + lpad(duration(timeline.spanMs), 6))
        let scale = Double(max(timeline.spanMs, 1)) / Double(barWidth)
        for (row, infoText) in zip(timeline.rows, info) {
            var cells = [Character](repeating: " ", count: barWidth)
            func column(_ ms: Int64) -> Int { min(barWidth - 1, max(0, Int(Double(ms) / scale))) }
            func fill(_ from: Int64?, _ to: Int64?, _ mark: Character) {
                guard let from else { return }
                let end = to ?? timeline.spanMs
                for index in column(from)...max(column(from), column(end)) where index < barWidth { cells[index] = mark }
            }
            if row.kind == "task" {
                // Backoff between a failed attempt and the next one.
                for (previous, next) in zip(row.attempts, row.attempts.dropFirst()) where previous.outcome != "succeeded" {
                    guard let nextStart = next.readyMs ?? next.leasedMs else { continue }
                    fill(previous.endMs, nextStart, "·")
                }
                for attempt in row.attempts {
                    // Until leased; one never leased waits until it ended (cancelled while ready) or on.
                    fill(attempt.readyMs, attempt.leasedMs ?? attempt.endMs, "░")
                    let ok = attempt.outcome == nil || attempt.outcome == "succeeded"
                    fill(attempt.leasedMs, attempt.endMs, ok ? "█" : "╳")
                }
                if row.attempts.isEmpty { cells[column(row.startMs)] = "│" }
            } else if let end = row.endMs, end > row.startMs {
                fill(row.startMs, end, "█")
            } else {
                cells[column(row.startMs)] = "│"
            }
            lines.append(pad(String(row.name.prefix(nameWidth)), nameWidth) + " " + lpad("+" + duration(row.startMs), 9) + " "
                         + lpad(row.durationMs.map(duration) ?? "…", 9) + "  " + String(cells) + "  " + infoText)
        }
        return lines.joined(separator: "\n")
    }

    /// State, attempts and executors (or the planner) of a row, on one line (`Render.oneLine`:
    /// executor ids and a cancellation's reason are the callers' text).
    static func info(_ row: Timeline.Row) -> String {
        Render.oneLine(infoText(row))
    }

    private static func infoText(_ row: Timeline.Row) -> String {
        switch row.kind {
        case "task":
            let tries = row.attempts.filter { $0.leasedMs != nil }.count
            var text = row.state
            if tries > 0 { text += "  \(tries) attempt\(tries == 1 ? "" : "s")" }
            if !row.executors.isEmpty { text += "  " + row.executors.joined(separator: ",") }
            return text
        default:
            return [row.state, row.detail].compactMap { $0 }.joined(separator: "  ")
        }
    }

    static func json(_ timeline: Timeline) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(timeline), as: UTF8.self)
    }

    /// `950ms`, `12.3s`, `4m05s`.
    static func duration(_ ms: Int64) -> String {
        if ms < 1000 { return "\(ms)ms" }
        if ms < 60_000 { return String(format: "%.1fs", Double(ms) / 1000) }
        return String(format: "%dm%02ds", ms / 60_000, (ms % 60_000) / 1000)
    }

    static func pad(_ text: String, _ width: Int) -> String {
        text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
    }

    static func lpad(_ text: String, _ width: Int) -> String {
        text.count >= width ? text : String(repeating: " ", count: width - text.count) + text
    }

    /// Columns of the terminal on stdout; `COLUMNS`, then 100, when it is not a terminal.
    static func terminalWidth() -> Int {
        var size = winsize()
        if ioctl(STDOUT_FILENO, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 20 { return Int(size.ws_col) }
        if let columns = ProcessInfo.processInfo.environment["COLUMNS"].flatMap(Int.init), columns > 20 { return columns }
        return 100
    }
}
