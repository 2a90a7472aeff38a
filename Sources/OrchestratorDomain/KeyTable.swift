/// Interns task keys to dense ids `0..<count`: an open-addressing hash table built for validation's
/// hot loop (two lookups per edge, millions of edges).
///
/// Why not `Dictionary<TaskKey, Int32>`: profiling the 100k-task / 1M-edge benchmark showed 60 % of
/// validation inside `Dictionary.find` (SipHash plus two scattered arrays per probe). Here a slot is one
/// `UInt64` holding a 32-bit hash tag and the id, so a probe touches one slot and, on a tag match, the key
/// itself. The hash is seeded per table from the system generator, so clients cannot precompute keys that
/// collide (the table is only as good as its seed against hash flooding; `ValidationLimits` bounds size).
struct KeyTable: Sendable {
    private var slots: [UInt64]  // 0 = empty; else tag << 32 | (id + 1)
    private(set) var keys: [TaskKey] = []
    private let mask: Int
    private let seed: UInt64

    init(capacity: Int) {
        var size = 16
        while size < capacity * 2 { size <<= 1 }
        slots = [UInt64](repeating: 0, count: size)
        mask = size - 1
        var generator = SystemRandomNumberGenerator()
        seed = generator.next() | 1
        keys.reserveCapacity(capacity)
    }

    var count: Int { keys.count }

    /// The id of `key`, inserting it with the next id if absent.
    mutating func insert(_ key: TaskKey) -> (id: Int32, inserted: Bool) {
        let hash = Self.hash(key.rawValue, seed: seed)
        let tag = hash >> 32
        var slot = Int(truncatingIfNeeded: hash) & mask
        while true {
            let entry = slots[slot]
            if entry == 0 {
                let id = Int32(truncatingIfNeeded: keys.count)
                slots[slot] = tag << 32 | UInt64(id + 1)
                keys.append(key)
                return (id, true)
            }
            if entry >> 32 == tag {
                let id = Int32(truncatingIfNeeded: entry & 0xFFFF_FFFF) - 1
                if keys[Int(id)] == key { return (id, false) }
            }
            slot = (slot + 1) & mask
        }
    }

    /// The id of `key`, or -1.
    @inline(__always)
    func find(_ key: TaskKey) -> Int32 {
        let hash = Self.hash(key.rawValue, seed: seed)
        let tag = hash >> 32
        var slot = Int(truncatingIfNeeded: hash) & mask
        return slots.withUnsafeBufferPointer { table in
            keys.withUnsafeBufferPointer { keys in
                while true {
                    let entry = table[slot]
                    if entry == 0 { return -1 }
                    if entry >> 32 == tag {
                        let id = Int32(truncatingIfNeeded: entry & 0xFFFF_FFFF) - 1
                        if keys[Int(id)] == key { return id }
                    }
                    slot = (slot + 1) & mask
                }
            }
        }
    }

    /// Resolves both ends of every edge: `sources[e]` and `targets[e]` are edge e's end ids, -1 for an
    /// unknown key.
    ///
    /// Works in batches so that the memory loads of many lookups are in flight at once: first every
    /// hash and first slot of the batch, then the probes (adjacent slots, usually the same cache line),
    /// then the key comparisons. A lookup is two cache misses (slot, key) on a big graph; done one by one
    /// they serialise, batched they overlap.
    func resolve(_ edges: [Edge]) -> (sources: [Int32], targets: [Int32]) {
        let batch = 64
        let m = edges.count
        var sources = [Int32](repeating: -1, count: m)
        var targets = [Int32](repeating: -1, count: m)
        var hashes = [UInt64](repeating: 0, count: batch * 2)
        var firstEntries = [UInt64](repeating: 0, count: batch * 2)
        var candidates = [Int32](repeating: 0, count: batch * 2)
        slots.withUnsafeBufferPointer { table in
            keys.withUnsafeBufferPointer { keys in
                edges.withUnsafeBufferPointer { edges in
                    sources.withUnsafeMutableBufferPointer { sources in
                        targets.withUnsafeMutableBufferPointer { targets in
                            hashes.withUnsafeMutableBufferPointer { hashes in
                                candidates.withUnsafeMutableBufferPointer { candidates in
                                firstEntries.withUnsafeMutableBufferPointer { first in
                                    var start = 0
                                    while start < m {
                                        let end = min(start + batch, m)
                                        let count = (end - start) * 2
                                        // Pass 1: hashes and home slots, loads without branches in between.
                                        for e in start..<end {
                                            let k = (e - start) * 2
                                            let hf = Self.hash(edges[e].from.rawValue, seed: seed)
                                            let ht = Self.hash(edges[e].to.rawValue, seed: seed)
                                            hashes[k] = hf
                                            hashes[k + 1] = ht
                                            first[k] = table[Int(truncatingIfNeeded: hf) & mask]
                                            first[k + 1] = table[Int(truncatingIfNeeded: ht) & mask]
                                        }
                                        // Pass 2: probe to a tag match (a candidate id) or an empty slot (-1).
                                        for k in 0..<count {
                                            let hash = hashes[k]
                                            let tag = hash >> 32
                                            var slot = Int(truncatingIfNeeded: hash) & mask
                                            var found: Int32 = -1
                                            var entry = first[k]
                                            while true {
                                                if entry == 0 { break }
                                                if entry >> 32 == tag {
                                                    found = Int32(truncatingIfNeeded: entry & 0xFFFF_FFFF) - 1
                                                    break
                                                }
                                                slot = (slot + 1) & mask
                                                entry = table[slot]
                                            }
                                            candidates[k] = found
                                        }
                                        // Pass 3: confirm candidates by comparing keys (independent loads
                                        // again); a tag collision (rare) falls back to a full lookup.
                                        for e in start..<end {
                                            let k = (e - start) * 2
                                            let f = candidates[k]
                                            if f >= 0 && keys[Int(f)] != edges[e].from { sources[e] = find(edges[e].from) } else { sources[e] = f }
                                            let t = candidates[k + 1]
                                            if t >= 0 && keys[Int(t)] != edges[e].to { targets[e] = find(edges[e].to) } else { targets[e] = t }
                                        }
                                        start = end
                                    }
                                }
                                }
                            }
                        }
                    }
                }
            }
        }
        return (sources, targets)
    }

    /// Hashes the key's UTF-8 bytes eight at a time (multiply–xor rounds, then the SplitMix64 finaliser).
    /// Equal strings have equal UTF-8 here because keys are compared by `==` only after a tag match and
    /// keys differing only by Unicode normalisation are rejected by the charset check before it matters.
    @inline(__always)
    static func hash(_ key: String, seed: UInt64) -> UInt64 {
        if let hash = key.utf8.withContiguousStorageIfAvailable({ hash(bytes: $0, seed: seed) }) { return hash }
        var copy = key
        return copy.withUTF8 { hash(bytes: $0, seed: seed) }
    }

    @inline(__always)
    static func hash(bytes: UnsafeBufferPointer<UInt8>, seed: UInt64) -> UInt64 {
            var h = seed ^ (UInt64(bytes.count) &* 0x9E37_79B9_7F4A_7C15)
            var i = 0
            let count = bytes.count
            let raw = UnsafeRawBufferPointer(bytes)
            while i + 8 <= count {
                h = (h ^ raw.loadUnaligned(fromByteOffset: i, as: UInt64.self)) &* 0xBF58_476D_1CE4_E5B9
                h ^= h >> 29
                i += 8
            }
            if i < count {
                var tail: UInt64 = 0
                var shift: UInt64 = 0
                while i < count {
                    tail |= UInt64(bytes[i]) << shift
                    shift += 8
                    i += 1
                }
                h = (h ^ tail) &* 0xBF58_476D_1CE4_E5B9
            }
            h ^= h >> 31
            h &*= 0x94D0_49BB_1331_11EB
            return h ^ (h >> 29)
    }
}
