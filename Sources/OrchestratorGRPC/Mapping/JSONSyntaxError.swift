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
            return trailingComma(in: bytes)
        } catch {
            return describe(error, in: bytes)
        }
    }

    /// "trailing comma before ']' at line 3, column 14" (the comma's place) for text Foundation's
    /// parser accepted with a comma closing an array or object — which JSON (RFC 8259) does not
    /// allow and other tools refuse, so a file read "strictly" accepted by orchctl or the server
    /// broke elsewhere (found by black-box testing); nil when there is none. Run it on text that
    /// parsed: it only skips strings and tracks the last byte outside them.
    public static func trailingComma(in bytes: [UInt8]) -> String? {
        var lastComma: Int?
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "\""):
                lastComma = nil
                index += 1
                while index < bytes.count, bytes[index] != UInt8(ascii: "\"") {
                    index += bytes[index] == UInt8(ascii: "\\") ? 2 : 1
                }
            case UInt8(ascii: ","):
                lastComma = index
            case UInt8(ascii: "]"), UInt8(ascii: "}"):
                if let comma = lastComma {
                    let (line, column) = position(ofByte: comma, in: bytes)
                    return "trailing comma before '\(Character(Unicode.Scalar(byte)))' at line \(line), column \(column)"
                }
            case 0x20, 0x09, 0x0A, 0x0D:
                break
            default:
                lastComma = nil
            }
            index += 1
        }
        return nil
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
