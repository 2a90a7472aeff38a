/// A server setting the pool sends itself: `SET LOCAL name = value` with a transaction's BEGIN
/// (`withTransaction(settings:)`), or `SET name = value` once per connection when it opens
/// (`PostgresPoolConfiguration.sessionSettings`). Names and values are constants of the calling
/// code, never input: both are checked to be plain words.
public struct PostgresSetting: Sendable, Hashable {
    public let name: String
    public let value: String

    public init(_ name: String, _ value: String) {
        precondition(Self.isPlainWord(name) && Self.isPlainWord(value), "setting names and values are plain words")
        self.name = name
        self.value = value
    }

    private static func isPlainWord(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A) || byte == 0x5F || byte == 0x2E
        }
    }
}
