import Foundation

/// Says where a hand-written JSON file (a DAG file, `--config`, a capability catalog) stopped parsing.
///
/// Foundation's `localizedDescription` for every syntax error is "The data is not in the correct
/// format." — nothing about where. Its debug description says "around character 1234" (a byte
/// offset from 0), which this turns into the line and column an editor shows.
public enum JSONSyntaxError {
    /// `error` as JSONSerialization threw it for `bytes`, e.g. "unexpected character at line 3,
    /// column 14"; Foundation's own message when it gives no detail.
    public static func describe(_ error: any Error, in bytes: [UInt8]) -> String {
        guard var detail = (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String, !detail.isEmpty else {
            return error.localizedDescription
        }
        if detail.hasSuffix(".") { detail.removeLast() }
        detail = detail.prefix(1).lowercased() + detail.dropFirst()
        guard let range = detail.range(of: #"around character [0-9]+"#, options: .regularExpression),
              let offset = Int(detail[range].split(separator: " ").last ?? "")
        else { return detail }
        let (line, column) = position(ofByte: offset, in: bytes)
        return detail.replacingCharacters(in: range, with: "at line \(line), column \(column)")
    }

    /// What is wrong with `bytes` as JSON, as `describe` says it; nil when they parse. For decoders
    /// (JSONDecoder) whose own error says only "The given data was not valid JSON".
    public static func problem(in bytes: [UInt8]) -> String? {
        do {
            _ = try JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed])
            return nil
        } catch {
            return describe(error, in: bytes)
        }
    }

    /// 1-based line and column of a byte offset (columns count bytes, as the offset does).
    static func position(ofByte offset: Int, in bytes: [UInt8]) -> (line: Int, column: Int) {
        let end = min(max(offset, 0), bytes.count)
        var line = 1
        var lineStart = 0
        for index in 0..<end where bytes[index] == UInt8(ascii: "\n") {
            line += 1
            lineStart = index + 1
        }
        return (line, end - lineStart + 1)
    }
}
