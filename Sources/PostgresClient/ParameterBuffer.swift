internal import CLibPQ

/// Bound parameters laid out the way `PQexecParams` and friends want them: parallel C arrays of
/// types, value pointers, lengths and formats. Values live in one allocation that is freed when the
/// buffer goes; libpq copies parameters into its output buffer during the call, so the buffer only
/// has to outlive the call.
final class ParameterBuffer {
    let count: Int32
    private(set) var types: [Oid]
    private(set) var lengths: [Int32]
    private(set) var formats: [Int32]
    private var values: [UnsafePointer<CChar>?]
    private let storage: UnsafeMutableRawBufferPointer

    init(_ binds: [any PostgresEncodable]) {
        let data = binds.map { $0.encode() }
        count = Int32(data.count)
        types = data.map { Oid($0.type.oid) }
        formats = data.map { $0.format.rawValue }
        // Text-format values must be NUL-terminated; binary ones are length-delimited.
        lengths = data.map { Int32($0.bytes?.count ?? 0) }
        let total = data.reduce(0) { $0 + ($1.bytes?.count ?? 0) + 1 }
        storage = UnsafeMutableRawBufferPointer.allocate(byteCount: max(total, 1), alignment: 1)
        values = []
        values.reserveCapacity(data.count)
        var offset = 0
        for value in data {
            guard let bytes = value.bytes else {
                values.append(nil)
                continue
            }
            let start = storage.baseAddress! + offset
            bytes.withUnsafeBytes { source in
                if let base = source.baseAddress { start.copyMemory(from: base, byteCount: source.count) }
            }
            start.storeBytes(of: 0, toByteOffset: bytes.count, as: UInt8.self)
            values.append(UnsafePointer(start.assumingMemoryBound(to: CChar.self)))
            offset += bytes.count + 1
        }
    }

    deinit { storage.deallocate() }

    /// Calls `body` with the C arrays; the pointers are valid only during the call.
    func withCArrays<T>(
        _ body: (Int32, UnsafePointer<Oid>?, UnsafePointer<UnsafePointer<CChar>?>?, UnsafePointer<Int32>?, UnsafePointer<Int32>?) -> T
    ) -> T {
        types.withUnsafeBufferPointer { types in
            values.withUnsafeBufferPointer { values in
                lengths.withUnsafeBufferPointer { lengths in
                    formats.withUnsafeBufferPointer { formats in
                        body(count, types.baseAddress, values.baseAddress, lengths.baseAddress, formats.baseAddress)
                    }
                }
            }
        }
    }
}
