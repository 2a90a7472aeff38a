internal import CLibPQ

extension PostgresConnection {
    /// Bulk-loads rows with `COPY … FROM STDIN` (text format).
    ///
    /// - Parameters:
    ///   - table: the table, already quoted if needed (a fixed name from code, never user input).
    ///   - columns: the column names, in the order of each row's values.
    ///   - rows: the values as text (PostgreSQL's input syntax for each column's type); nil is NULL.
    /// - Returns: the number of rows copied.
    @discardableResult
    public func copyIn(table: String, columns: [String], rows: [[String?]]) throws -> Int {
        let quotedColumns = try columns.map { try escapeIdentifier($0) }.joined(separator: ", ")
        // unsafeSQL: the table is code-supplied and the columns are escaped identifiers.
        let sql = "COPY \(table) (\(quotedColumns)) FROM STDIN"
        guard let start = PQexec(handle, sql) else { throw connectionError() }
        guard PQresultStatus(start) == PGRES_COPY_IN else {
            let error = makeError(start)
            PQclear(start)
            throw error
        }
        PQclear(start)
        var buffer: [UInt8] = []
        buffer.reserveCapacity(64 * 1024)
        func send() throws {
            let sent = buffer.withUnsafeBufferPointer { bytes in
                bytes.withMemoryRebound(to: CChar.self) { PQputCopyData(handle, $0.baseAddress, Int32($0.count)) }
            }
            if sent != 1 { throw connectionError() }
            buffer.removeAll(keepingCapacity: true)
        }
        for row in rows {
            precondition(row.count == columns.count, "a COPY row has \(row.count) values for \(columns.count) columns")
            for (index, value) in row.enumerated() {
                if index > 0 { buffer.append(UInt8(ascii: "\t")) }
                if let value { Self.appendCopyEscaped(value, to: &buffer) } else { buffer.append(contentsOf: Array("\\N".utf8)) }
            }
            buffer.append(UInt8(ascii: "\n"))
            if buffer.count >= 60 * 1024 { try send() }
        }
        if !buffer.isEmpty { try send() }
        guard PQputCopyEnd(handle, nil) == 1 else { throw connectionError() }
        var copied = 0
        var failure: PostgresError?
        while let result = PQgetResult(handle) {
            if PQresultStatus(result) == PGRES_COMMAND_OK {
                copied = Int(String(cString: PQcmdTuples(result))) ?? 0
            } else if failure == nil {
                failure = makeError(result)
            }
            PQclear(result)
        }
        if let failure { throw failure }
        return copied
    }

    /// COPY text format: backslash, tab, newline and carriage return are escaped.
    static func appendCopyEscaped(_ value: String, to buffer: inout [UInt8]) {
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: "\\"): buffer.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
            case UInt8(ascii: "\t"): buffer.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
            case UInt8(ascii: "\n"): buffer.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
            case UInt8(ascii: "\r"): buffer.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
            default: buffer.append(byte)
            }
        }
    }
}
