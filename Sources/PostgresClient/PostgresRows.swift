internal import CLibPQ

/// Owns one `PGresult` and frees it with `PQclear` when the last reference goes.
///
/// Threading: a `PGresult` is immutable once libpq hands it over and libpq documents it as safe to
/// read from any thread, so this class is `Sendable` without a lock.
final class PostgresResult: @unchecked Sendable {
    let handle: OpaquePointer
    let rowCount: Int
    let columnNames: [String]
    let columnIndex: [String: Int]
    let columnTypes: [PostgresType]
    let columnFormats: [PostgresData.Format]
    let affectedRows: Int
    let commandTag: String

    init(_ handle: OpaquePointer) {
        self.handle = handle
        rowCount = Int(PQntuples(handle))
        let columns = Int(PQnfields(handle))
        var names: [String] = []
        var types: [PostgresType] = []
        var formats: [PostgresData.Format] = []
        var index: [String: Int] = [:]
        for column in 0..<columns {
            let name = String(cString: PQfname(handle, Int32(column)))
            names.append(name)
            if index[name] == nil { index[name] = column }  // the first of duplicate names wins, as in PQfnumber
            types.append(PostgresType(oid: PQftype(handle, Int32(column))))
            formats.append(PQfformat(handle, Int32(column)) == 1 ? .binary : .text)
        }
        columnNames = names
        columnTypes = types
        columnFormats = formats
        columnIndex = index
        affectedRows = Int(String(cString: PQcmdTuples(handle))) ?? 0
        commandTag = String(cString: PQcmdStatus(handle))
    }

    deinit { PQclear(handle) }

    func data(row: Int, column: Int) -> PostgresData {
        let type = columnTypes[column]
        let format = columnFormats[column]
        if PQgetisnull(handle, Int32(row), Int32(column)) == 1 {
            return PostgresData(type: type, format: format, bytes: nil)
        }
        let length = Int(PQgetlength(handle, Int32(row), Int32(column)))
        let bytes = PQgetvalue(handle, Int32(row), Int32(column)).withMemoryRebound(to: UInt8.self, capacity: length) {
            Array(UnsafeBufferPointer(start: $0, count: length))
        }
        return PostgresData(type: type, format: format, bytes: bytes)
    }
}

/// The rows a statement returned, with the number of rows it affected.
public struct PostgresRows: RandomAccessCollection, Sendable {
    let result: PostgresResult?

    init(result: PostgresResult?) { self.result = result }

    public var startIndex: Int { 0 }
    public var endIndex: Int { result?.rowCount ?? 0 }
    public subscript(position: Int) -> PostgresRow { PostgresRow(result: result!, index: position) }

    /// Column names in order.
    public var columns: [String] { result?.columnNames ?? [] }
    /// Rows inserted, updated, deleted, selected, copied ... (from the command tag).
    public var affectedRows: Int { result?.affectedRows ?? 0 }
    /// The command tag, e.g. `INSERT 0 3`.
    public var commandTag: String { result?.commandTag ?? "" }
}

/// One row; decode its fields by column name or index.
public struct PostgresRow: Sendable {
    let result: PostgresResult
    public let index: Int

    /// Decodes the column named `column` (as PostgreSQL reports it: lower case unless quoted).
    /// - Throws: `PostgresError` with code `.decoding` for an unknown column, a NULL read into a
    ///   non-optional type, or a type mismatch.
    public func decode<T: PostgresDecodable>(_ type: T.Type = T.self, column: String) throws -> T {
        guard let position = result.columnIndex[column] else {
            throw PostgresError.client(
                .decoding, "no column \(column) in the result (columns: \(result.columnNames.joined(separator: ", ")))")
        }
        return try decode(type, at: position)
    }

    /// Decodes the column at `position` (from 0).
    public func decode<T: PostgresDecodable>(_ type: T.Type = T.self, at position: Int) throws -> T {
        guard position >= 0, position < result.columnNames.count else {
            throw PostgresError.client(.decoding, "column index \(position) out of range (\(result.columnNames.count) columns)")
        }
        let cell = PostgresCell(data: result.data(row: index, column: position), columnName: result.columnNames[position])
        guard let bytes = cell.data.bytes else { return try T.decodeNull(from: cell) }
        return try T.decode(from: cell, bytes: bytes)
    }

    /// The raw value of a column.
    public func data(column: String) -> PostgresData? {
        result.columnIndex[column].map { result.data(row: index, column: $0) }
    }
}
