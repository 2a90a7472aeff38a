/// Interns task keys to dense ids `0..<count`: an open-addressing hash table built for validation's hot
/// loop (two lookups per edge, millions of edges).
///
/// Why not `Dictionary<TaskKey, Int32>`: profiling the 100k-task / 1M-edge benchmark showed 60 % of
/// validation inside `Dictionary.find` (SipHash, then a probe into the key array and another into the
/// value array, each a cache miss on a big graph). Here:
/// - a slot holds the id, a hash tag and, for keys of up to 15 UTF-8 bytes (nearly all keys), the key's
///   bytes themselves, so a lookup is one cache miss and an exact comparison of two words;
/// - longer keys keep a sentinel in the slot and are compared with the stored key;
/// - `resolve` looks up the ends of a batch of edges with the loads first and the comparisons after, so
///   the misses of many lookups overlap instead of queueing one behind the other;
/// - the hash is seeded per table from the system generator, so clients cannot precompute keys that
///   collide (`ValidationLimits` bounds the table's size anyway).
///
/// Keys are compared by their UTF-8 bytes. `String ==` would also equate canonically equivalent
/// non-ASCII spellings, but non-ASCII keys are rejected by the key charset before they matter.
struct KeyTable: Sendable {
    struct Slot {
        /// 0 = empty; else tag << 32 | (id + 1).
        var meta: UInt64
        var word0: UInt64
        /// Bytes 8..<15 of a short key with its length in the top byte, or `longKey`.
        var word1: UInt64
    }

    /// A key packed into two words: exact for short keys, (`longKey`, `longKey`) plus the hash for others.
    struct Packed {
        var word0: UInt64
        var word1: UInt64
        var hash: UInt64
        var isLong: Bool { word1 == KeyTable.longKey }
    }

    static let longKey = UInt64.max
    private var slots: [Slot]
    private(set) var keys: [TaskKey] = []
    private let mask: Int
    private let seed: UInt64

    init(capacity: Int) {
        var size = 16
        while size < capacity * 2 { size <<= 1 }
        slots = [Slot](repeating: Slot(meta: 0, word0: 0, word1: 0), count: size)
        mask = size - 1
        var generator = SystemRandomNumberGenerator()
        seed = generator.next() | 1
        keys.reserveCapacity(capacity)
    }

    var count: Int { keys.count }

    /// The id of `key`, inserting it with the next id if absent.
    mutating func insert(_ key: TaskKey) -> (id: Int32, inserted: Bool) {
        let packed = pack(key.rawValue)
        let tag = packed.hash >> 32
        var slot = Int(truncatingIfNeeded: packed.hash) & mask
        while true {
            let entry = slots[slot]
            if entry.meta == 0 {
                let id = Int32(truncatingIfNeeded: keys.count)
                slots[slot] = Slot(meta: tag << 32 | UInt64(id + 1), word0: packed.word0, word1: packed.word1)
                keys.append(key)
                return (id, true)
            }
            if let id = Self.match(entry, packed, tag: tag, key: key, keys: keys) { return (id, false) }
            slot = (slot + 1) & mask
        }
    }

    /// The id of `key`, or -1.
    func find(_ key: TaskKey) -> Int32 {
        let packed = pack(key.rawValue)
        return slots.withUnsafeBufferPointer { table in
            probe(table, packed, key: key, from: Int(truncatingIfNeeded: packed.hash) & mask)
        }
    }

    @inline(__always)
    private func probe(_ table: UnsafeBufferPointer<Slot>, _ packed: Packed, key: TaskKey, from start: Int) -> Int32 {
        let tag = packed.hash >> 32
        var slot = start
        while true {
            let entry = table[slot]
            if entry.meta == 0 { return -1 }
            if let id = Self.match(entry, packed, tag: tag, key: key, keys: keys) { return id }
            slot = (slot + 1) & mask
        }
    }

    @inline(__always)
    private static func match(_ entry: Slot, _ packed: Packed, tag: UInt64, key: TaskKey, keys: [TaskKey]) -> Int32? {
        guard entry.meta >> 32 == tag, entry.word0 == packed.word0, entry.word1 == packed.word1 else { return nil }
        let id = Int32(truncatingIfNeeded: entry.meta & 0xFFFF_FFFF) - 1
        if !packed.isLong { return id }
        return keys[Int(id)].rawValue.utf8.elementsEqual(key.rawValue.utf8) ? id : nil
    }

    /// Resolves both ends of every edge: `sources[e]` and `targets[e]` are edge e's end ids, -1 for an
    /// unknown key.
    ///
    /// Works in batches: first every endpoint's packed key and home slot (loads with no branch between
    /// them, so dozens of cache misses are in flight together), then the comparisons and any further
    /// probing, which mostly hit the cache lines just loaded.
    func resolve(_ edges: [Edge]) -> (sources: [Int32], targets: [Int32]) {
        let batch = 64
        let m = edges.count
        var sources = [Int32](repeating: -1, count: m)
        var targets = [Int32](repeating: -1, count: m)
        var packedKeys = [Packed](repeating: Packed(word0: 0, word1: 0, hash: 0), count: batch * 2)
        var homes = [Slot](repeating: Slot(meta: 0, word0: 0, word1: 0), count: batch * 2)
        slots.withUnsafeBufferPointer { table in
            edges.withUnsafeBufferPointer { edges in
                sources.withUnsafeMutableBufferPointer { sources in
                    targets.withUnsafeMutableBufferPointer { targets in
                        packedKeys.withUnsafeMutableBufferPointer { packedKeys in
                            homes.withUnsafeMutableBufferPointer { homes in
                                var start = 0
                                while start < m {
                                    let end = min(start + batch, m)
                                    for e in start..<end {
                                        let k = (e - start) * 2
                                        let from = pack(edges[e].from.rawValue)
                                        let to = pack(edges[e].to.rawValue)
                                        packedKeys[k] = from
                                        packedKeys[k + 1] = to
                                        homes[k] = table[Int(truncatingIfNeeded: from.hash) & mask]
                                        homes[k + 1] = table[Int(truncatingIfNeeded: to.hash) & mask]
                                    }
                                    for e in start..<end {
                                        let k = (e - start) * 2
                                        sources[e] = resolveOne(table, packedKeys[k], home: homes[k], key: edges[e].from)
                                        targets[e] = resolveOne(table, packedKeys[k + 1], home: homes[k + 1], key: edges[e].to)
                                    }
                                    start = end
                                }
                            }
                        }
                    }
                }
            }
        }
        return (sources, targets)
    }

    /// A lookup whose home slot was already loaded.
    @inline(__always)
    private func resolveOne(_ table: UnsafeBufferPointer<Slot>, _ packed: Packed, home: Slot, key: TaskKey) -> Int32 {
        if home.meta == 0 { return -1 }
        if let id = Self.match(home, packed, tag: packed.hash >> 32, key: key, keys: keys) { return id }
        return probe(table, packed, key: key, from: (Int(truncatingIfNeeded: packed.hash) + 1) & mask)
    }

    /// Packs a key and hashes it.
    @inline(__always)
    func pack(_ key: String) -> Packed {
        if let packed = key.utf8.withContiguousStorageIfAvailable({ Self.pack(bytes: $0, seed: seed) }) { return packed }
        var copy = key
        return copy.withUTF8 { Self.pack(bytes: $0, seed: seed) }
    }

    @inline(__always)
    static func pack(bytes: UnsafeBufferPointer<UInt8>, seed: UInt64) -> Packed {
        let count = bytes.count
        let raw = UnsafeRawBufferPointer(bytes)
        if count <= 15 {
            var word0: UInt64 = 0
            var word1: UInt64 = UInt64(count) << 56
            if count >= 8 {
                word0 = raw.loadUnaligned(as: UInt64.self)
                word1 |= tail(raw, from: 8, count: count)
            } else {
                word0 = tail(raw, from: 0, count: count)
            }
            return Packed(word0: word0, word1: word1, hash: mix(mix(seed ^ word0) ^ word1))
        }
        var h = seed ^ (UInt64(count) &* 0x9E37_79B9_7F4A_7C15)
        var i = 0
        while i + 8 <= count {
            h = mix(h ^ raw.loadUnaligned(fromByteOffset: i, as: UInt64.self))
            i += 8
        }
        if i < count { h = mix(h ^ tail(raw, from: i, count: count)) }
        return Packed(word0: longKey, word1: longKey, hash: h)
    }

    /// Bytes `from..<count` (fewer than 8) as a little-endian word.
    @inline(__always)
    private static func tail(_ raw: UnsafeRawBufferPointer, from start: Int, count: Int) -> UInt64 {
        var word: UInt64 = 0
        var shift: UInt64 = 0
        var i = start
        while i < count {
            word |= UInt64(raw[i]) << shift
            shift += 8
            i += 1
        }
        return word
    }

    /// The SplitMix64 finaliser: every input bit affects every output bit.
    @inline(__always)
    private static func mix(_ value: UInt64) -> UInt64 {
        var z = value &* 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
