extension String {
    /// Whether both strings hold the same UTF-8 bytes. Swift's `==` (and hashing) treats
    /// canonically equivalent strings as equal — "K" and the Kelvin sign U+212A, "é" as one scalar
    /// or as "e" and a combining accent — while PostgreSQL compares bytes. A tenant or lease owner
    /// checked with `==` let a look-alike name act on what the database keeps apart (found by
    /// black-box testing); identities are compared with this instead.
    public func hasSameBytes(as other: String) -> Bool {
        utf8.elementsEqual(other.utf8)
    }

    /// In Unicode normalization form C: the one spelling of its canonical-equivalence class, so
    /// that two different NFC strings are never equal to Swift either. Required of the names that
    /// make up an identity (executor ids here, subjects and tenants in OrchestratorAuth).
    public var isNFC: Bool {
        // `_nfcCodeUnits` is the standard library's public normaliser (what Foundation's
        // `precomposedStringWithCanonicalMapping` builds on), spared a Foundation import.
        utf8.elementsEqual(_nfcCodeUnits)
    }
}
