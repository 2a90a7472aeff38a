import Foundation

/// Connection strings in messages, with their passwords masked.
///
/// Connection errors end up in logs, and libpq quotes the whole connection string in some of its
/// messages (a URI it cannot parse, for instance), credentials included. Every message built from
/// a connection attempt goes through `redacting(_:of:)` first.
enum ConninfoRedaction {
    static let mask = "****"

    /// `message` with every occurrence of `conninfo` replaced by `masked(conninfo)`.
    static func redacting(_ message: String, of conninfo: String) -> String {
        guard !conninfo.isEmpty, message.contains(conninfo) else { return message }
        return message.replacingOccurrences(of: conninfo, with: masked(conninfo))
    }

    /// The connection string with its passwords replaced by `****`: a URL's `user:password@` and
    /// `password=` query parameters, a keyword/value string's `password=` value (quoted or not).
    /// Malformed strings are masked too — they are the ones libpq quotes.
    static func masked(_ conninfo: String) -> String {
        var text = conninfo
        // URL userinfo: from after "://user:" to the last "@" of the authority. The authority ends
        // at the first "/" or "?" after the last "@" before them; a password may contain "/", so
        // take the last "@" of the whole string before any "?".
        if let scheme = text.range(of: "://") {
            let rest = text[scheme.upperBound...]
            let beforeQuery = rest.firstIndex(of: "?").map { rest[..<$0] } ?? rest
            if let at = beforeQuery.lastIndex(of: "@"), let colon = rest[..<at].firstIndex(of: ":") {
                text.replaceSubrange(text.index(after: colon)..<at, with: mask)
            }
        }
        return maskingKeywordValues(maskingQueryPasswords(text))
    }

    /// `password=…` parameters of a URL's query string, up to the next `&`.
    private static func maskingQueryPasswords(_ text: String) -> String {
        guard let question = text.firstIndex(of: "?") else { return text }
        let query = text[text.index(after: question)...].split(separator: "&", omittingEmptySubsequences: false).map { item in
            item.lowercased().hasPrefix("password=") ? "password=" + mask : String(item)
        }
        return String(text[...question]) + query.joined(separator: "&")
    }

    /// `password = value` of a keyword/value string: the value is a word or a single-quoted string
    /// with backslash escapes.
    private static func maskingKeywordValues(_ text: String) -> String {
        guard !text.contains("://") else { return text }
        let characters = Array(text)
        var output = ""
        var index = 0
        while index < characters.count {
            if matchesPasswordKeyword(characters, at: index) {
                // Copy the keyword, spaces and "=" and spaces, then skip the value.
                var cursor = index + "password".count
                while cursor < characters.count, characters[cursor] == " " { cursor += 1 }
                guard cursor < characters.count, characters[cursor] == "=" else {
                    output.append(characters[index])
                    index += 1
                    continue
                }
                cursor += 1
                while cursor < characters.count, characters[cursor] == " " { cursor += 1 }
                output += String(characters[index..<cursor]) + mask
                if cursor < characters.count, characters[cursor] == "'" {
                    cursor += 1
                    while cursor < characters.count, characters[cursor] != "'" {
                        cursor += characters[cursor] == "\\" ? 2 : 1
                    }
                    cursor += 1
                } else {
                    while cursor < characters.count, characters[cursor] != " " { cursor += 1 }
                }
                index = min(cursor, characters.count)
            } else {
                output.append(characters[index])
                index += 1
            }
        }
        return output
    }

    /// "password" at `index`, at the start of the string or after a space.
    private static func matchesPasswordKeyword(_ characters: [Character], at index: Int) -> Bool {
        let keyword = Array("password")
        guard index + keyword.count <= characters.count, index == 0 || characters[index - 1] == " " else { return false }
        return Array(characters[index..<index + keyword.count]).map { Character($0.lowercased()) } == keyword
    }
}
