import Foundation

/// `retention`: a duration in whole seconds, or with a unit (`90s`, `30m`, `12h`, `30d`); `off`,
/// `none` or zero (in any unit) keeps finished workflows for ever.
enum RetentionSetting {
    /// About a century: a longer retention is as good as none, and its milliseconds must fit.
    static let maxSeconds = 36_500 * 86_400

    static func parse(_ text: String) throws -> Duration? {
        // Whitespace and line ends around it (a value read from a file) are not part of it.
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
        if ["off", "none", ""].contains(trimmed) { return nil }
        let units: [Character: Int] = ["s": 1, "m": 60, "h": 3600, "d": 86_400]
        var digits = Substring(trimmed)
        var unit = 1
        if let last = trimmed.last, let factor = units[last] {
            digits = digits.dropLast()
            unit = factor
        }
        guard digits.allSatisfy(\.isASCII), let count = Int(digits), count >= 0, count <= maxSeconds / unit else {
            throw SettingsError(description: "retention \"\(text)\" is not a duration: give seconds or a number with s, m, h or d (30d, 12h), at most 36500d, or off")
        }
        // Zero in any unit is off too: "keep nothing" would delete each workflow as it finishes,
        // before any client could read its outcome.
        return count == 0 ? nil : .seconds(count * unit)
    }
}
