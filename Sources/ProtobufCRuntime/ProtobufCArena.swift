/// Owns every C allocation made while building one protobuf-c message tree for packing.
///
/// Generated `serializedBytes()` creates an arena, converts the Swift value into protobuf-c
/// structs whose strings, byte buffers, arrays and sub-messages all live in the arena, packs,
/// and lets the arena go: `deinit` frees everything at once, so no C pointer outlives the call.
///
/// Allocation bumps a pointer through a few growing chunks instead of one `malloc` per string,
/// array and sub-message (a 4-task PlanWorkflow response made ~150 of them; malloc/free was a
/// fifth of the encode time). The methods are `@inlinable` so the generated code, in another
/// module, gets them specialized: unspecialized, every `pointerArray`/`box` call looked up generic
/// metadata at run time (`swift_getGenericMetadata`, 9 % of orchestratord's PlanWorkflow CPU).
///
/// Thread-safety: an arena is used by one call on one thread and never shared.
public final class ProtobufCArena {
    /// Chunks to free in `deinit` (the current one included). The first is kept apart: most
    /// messages fit in it, and appending it to an empty array allocated that array's storage on
    /// every encode (one heap object per call, seen in the echo benchmark's allocation profile).
    @usableFromInline var firstChunk: UnsafeMutableRawPointer?
    @usableFromInline var laterChunks: [UnsafeMutableRawPointer] = []
    /// Next free byte of the current chunk, and its end.
    @usableFromInline var next: UnsafeMutableRawPointer?
    @usableFromInline var end: UnsafeMutableRawPointer?
    @usableFromInline var nextChunkSize = 1024

    public init() {}

    deinit {
        firstChunk?.deallocate()
        for chunk in laterChunks { chunk.deallocate() }
    }

    /// A NUL-terminated copy of `text`.
    /// - Throws: `ProtobufCError.embeddedNUL` when the text contains U+0000, which protobuf-c
    ///   (using `strlen`) would silently truncate.
    @inlinable
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
    @inlinable
    public func bytes(_ bytes: [UInt8]) -> UnsafeMutablePointer<UInt8>? {
        array(bytes)
    }

    /// A C array holding `values`; nil when empty.
    @inlinable
    public func array<Element>(_ values: [Element]) -> UnsafeMutablePointer<Element>? {
        if values.isEmpty { return nil }
        let pointer = allocate(Element.self, count: values.count)
        _ = UnsafeMutableBufferPointer(start: pointer, count: values.count).initialize(from: values)
        return pointer
    }

    /// A C array of pointers (`T **`), as protobuf-c uses for repeated strings and messages.
    @inlinable
    public func pointerArray<Element>(_ values: [UnsafeMutablePointer<Element>]) -> UnsafeMutablePointer<UnsafeMutablePointer<Element>?>? {
        if values.isEmpty { return nil }
        let pointer = allocate(UnsafeMutablePointer<Element>?.self, count: values.count)
        values.withUnsafeBufferPointer { source in
            for index in source.indices { (pointer + index).initialize(to: source[index]) }
        }
        return pointer
    }

    /// A heap copy of `value` (a protobuf-c sub-message).
    @inlinable
    public func box<Value>(_ value: Value) -> UnsafeMutablePointer<Value> {
        let pointer = allocate(Value.self, count: 1)
        pointer.initialize(to: value)
        return pointer
    }

    /// Only trivial C types are stored, so dropping chunks without deinitializing is correct.
    @inlinable
    func allocate<Element>(_ type: Element.Type, count: Int) -> UnsafeMutablePointer<Element> {
        let byteCount = max(1, MemoryLayout<Element>.stride * count)
        let alignment = MemoryLayout<Element>.alignment
        if let next, let end {
            let start = next.alignedUp(toMultipleOf: alignment)
            if end - start >= byteCount {
                self.next = start + byteCount
                return start.bindMemory(to: Element.self, capacity: count)
            }
        }
        return newChunk(byteCount: byteCount, alignment: alignment).bindMemory(to: Element.self, capacity: count)
    }

    /// Starts a chunk big enough for `byteCount` (chunks double up to 64 KiB; a larger request
    /// gets a chunk of its own size) and returns its first `byteCount` bytes.
    @usableFromInline
    func newChunk(byteCount: Int, alignment: Int) -> UnsafeMutableRawPointer {
        let size = max(nextChunkSize, byteCount)
        nextChunkSize = min(nextChunkSize * 2, 64 * 1024)
        // 16-byte alignment covers every protobuf-c field type.
        let chunk = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: max(alignment, 16))
        if firstChunk == nil { firstChunk = chunk } else { laterChunks.append(chunk) }
        next = chunk + byteCount
        end = chunk + size
        return chunk
    }
}
