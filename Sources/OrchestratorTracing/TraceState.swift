/// W3C `tracestate` values a server keeps and passes on (Trace Context, §3.3).
///
/// The header is opaque vendor data riding along with `traceparent`; the server stores the one a
/// workflow was submitted with and hands it to the executors of its tasks. What it keeps must be a
/// value the next hop accepts, so a header that is not one is dropped whole ("a vendor that fails
/// to parse tracestate must not propagate it"), and a long one is cut the way the specification
/// asks: list-members over 128 characters go first, then members from the end, until it fits.
public enum TraceState {
    /// The most characters kept: every vendor must propagate at least this many.
    public static let maxLength = 512
    /// The specification's limit on list-members.
    public static let maxMembers = 32

    /// `header` as it is passed on: nil when absent, empty, malformed or with more than 32
    /// list-members; otherwise its members (blank ones dropped, as the specification allows)
    /// joined by `,`, cut to 512 characters.
    public static func propagated(_ header: String?) -> String? {
        guard let header else { return nil }
        var members: [Substring] = []
        for member in header.split(separator: ",", omittingEmptySubsequences: false) {
            var text = member.drop(while: isBlank)
            while let last = text.last, isBlank(last) { text.removeLast() }
            guard !text.isEmpty else { continue }
            guard isValidMember(text) else { return nil }
            members.append(text)
        }
        guard !members.isEmpty, members.count <= maxMembers else { return nil }
        while length(members) > maxLength {
            if let long = members.lastIndex(where: { $0.utf8.count > 128 }) {
                members.remove(at: long)
            } else {
                members.removeLast()
            }
        }
        return members.isEmpty ? nil : members.joined(separator: ",")
    }

    private static func length(_ members: [Substring]) -> Int {
        members.reduce(0) { $0 + $1.utf8.count } + max(0, members.count - 1)
    }

    private static func isBlank(_ character: Character) -> Bool { character == " " || character == "\t" }

    /// `key=value`: key lower-case letters, digits and `_-*/`, with at most one `@` (a
    /// multi-tenant key), 1–256 characters starting with a letter or digit; value 1–256 printable
    /// ASCII characters other than `,` and `=`, not ending in a space.
    private static func isValidMember(_ member: Substring) -> Bool {
        guard let equals = member.firstIndex(of: "=") else { return false }
        let key = member[..<equals].utf8
        let value = member[member.index(after: equals)...].utf8
        guard (1...256).contains(key.count), (1...256).contains(value.count) else { return false }
        guard let first = key.first, isLowerAlphaNumeric(first) else { return false }
        var ats = 0
        for byte in key {
            if byte == UInt8(ascii: "@") {
                ats += 1
            } else if !(isLowerAlphaNumeric(byte) || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-")
                || byte == UInt8(ascii: "*") || byte == UInt8(ascii: "/"))
            {
                return false
            }
        }
        guard ats <= 1, key.last != UInt8(ascii: "@") else { return false }
        guard value.last != UInt8(ascii: " ") else { return false }
        return value.allSatisfy { (0x20...0x7e).contains($0) && $0 != UInt8(ascii: ",") && $0 != UInt8(ascii: "=") }
    }

    private static func isLowerAlphaNumeric(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
    }
}
