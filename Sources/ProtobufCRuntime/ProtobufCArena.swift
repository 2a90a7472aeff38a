/// Owns every C allocation made while building one protobuf-c message tree for packing.
///
/// Generated `serializedBytes()` creates an arena, converts the Swift value into protobuf-c
/// structs whose strings, byte buffers, arrays and sub-messages all live in the arena, packs,
/// and lets the arena go: `deinit` frees everything at once, so no C pointer outlives the call.
///
/// Thread-safety: an arena is used by one call on one thread and never shared.
public final class ProtobufCArena {
    private var allocations: [UnsafeMutableRawPointer] = []

    public init() {}

    deinit {
        for pointer in allocations { pointer.deallocate() }
    }

    /// A NUL-terminated copy of `text`.
    /// - Throws: `ProtobufCError.embeddedNUL` when the text contains U+0000, which protobuf-c
    ///   (using `strlen`) would silently truncate.
    public func string(_ text: String) throws(ProtobufCError) -> UnsafeMutablePointer<CChar> {
        var text = text
        let pointer: UnsafeMutablePointer<CChar>? = text.withUTF8 { utf8 in
            if utf8.contains(0) { return nil }
            let pointer = allocate(CChar.self, count: utf8.count + 1)
            if let base = utf8.baseAddress {
                UnsafeMutableRawPointer(pointer).copyMemory(from: base, byteCount: utf8.count)
            }
            pointer[utf8.count] = 0
            return pointer
        }
        guard let pointer else { throw ProtobufCError(.embeddedNUL, "string field contains a NUL character") }
        return pointer
    }

    /// A copy of `bytes`; nil when empty (protobuf-c never reads data of a zero-length buffer).
    public func bytes(_ bytes: [UInt8]) -> UnsafeMutablePointer<UInt8>? {
        array(bytes)
    }

    /// A C array holding `values`; nil when empty.
    public func array<Element>(_ values: [Element]) -> UnsafeMutablePointer<Element>? {
        if values.isEmpty { return nil }
        let pointer = allocate(Element.self, count: values.count)
        _ = UnsafeMutableBufferPointer(start: pointer, count: values.count).initialize(from: values)
        return pointer
    }

    /// A C array of pointers (`T **`), as protobuf-c uses for repeated strings and messages.
    public func pointerArray<Element>(_ values: [UnsafeMutablePointer<Element>]) -> UnsafeMutablePointer<UnsafeMutablePointer<Element>?>? {
        if values.isEmpty { return nil }
        let pointer = allocate(UnsafeMutablePointer<Element>?.self, count: values.count)
        for (index, value) in values.enumerated() { (pointer + index).initialize(to: value) }
        return pointer
    }

    /// A heap copy of `value` (a protobuf-c sub-message).
    public func box<Value>(_ value: Value) -> UnsafeMutablePointer<Value> {
        let pointer = allocate(Value.self, count: 1)
        pointer.initialize(to: value)
        return pointer
    }

    /// Only trivial C types are stored, so deallocating without deinitializing is correct.
    private func allocate<Element>(_ type: Element.Type, count: Int) -> UnsafeMutablePointer<Element> {
        let pointer = UnsafeMutablePointer<Element>.allocate(capacity: count)
        allocations.append(UnsafeMutableRawPointer(pointer))
        return pointer
    }
}
