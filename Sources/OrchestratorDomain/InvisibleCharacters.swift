extension Unicode.Scalar {
    /// Control characters, format characters (bidirectional overrides such as U+202E, zero-width
    /// joiners) and the Unicode line and paragraph separators: what can forge or disguise a line
    /// in a log or a terminal. Refused in executor ids, escaped in every text the tools print.
    public var isInvisibleInText: Bool {
        switch properties.generalCategory {
        case .control, .format, .lineSeparator, .paragraphSeparator: true
        default: false
        }
    }
}
