/// Matches free text against intent rules: a phrase matches when its words appear consecutively among the
/// text's words, ignoring case and punctuation ("Write a REPORT on X." matches "report on").
public enum IntentMatcher {
    public struct Match: Hashable, Sendable {
        public var rule: String
        public var phrase: String
        public var goals: [String]
    }

    /// Every matching rule, in catalog order, with the first phrase that matched.
    public static func matches(_ text: String, rules: [IntentRule]) -> [Match] {
        let textWords = words(text)
        var result: [Match] = []
        for rule in rules {
            for phrase in rule.phrases where contains(textWords, words(phrase)) {
                result.append(Match(rule: rule.name, phrase: phrase, goals: rule.goals))
                break
            }
        }
        return result
    }

    /// Lower-cased runs of letters and digits.
    static func words(_ text: String) -> [Substring] {
        text.lowercased().split { !($0.isLetter || $0.isNumber) }
    }

    static func contains(_ haystack: [Substring], _ needle: [Substring]) -> Bool {
        guard !needle.isEmpty, needle.count <= haystack.count else { return false }
        for start in 0...(haystack.count - needle.count)
        where haystack[start..<(start + needle.count)].elementsEqual(needle) {
            return true
        }
        return false
    }
}
