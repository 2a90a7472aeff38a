/// Finds a key that appears twice in one JSON object.
///
/// Foundation's JSONSerialization keeps the last of duplicated keys without a word, so a DAG file
/// task with two `"depends_on"` arrays, or a config file naming a setting twice, silently lost
/// the first. Files people write by hand (DAG files, `--config`) are scanned with this after
/// they parsed, and a duplicate is refused with where it is.
///
/// Runs on text JSONSerialization already accepted, so it only tokenises: strings (escapes
/// decoded, so `"a"` and `"\u0061"` are the same key), containers, and skips everything else.
public enum JSONDuplicateKeys {
    public struct Duplicate: Sendable, Hashable {
        /// Where the object is, as `tasks[2].retry` (empty for the top-level object).
        public var path: String
        public var key: String
    }

    private enum Container {
        case object(keys: Set<String>, current: String?, path: String)
        case array(index: Int, path: String)

        var path: String {
            switch self {
            case .object(_, _, let path), .array(_, let path): return path
            }
        }
    }

    /// The first key repeated within one object, in document order; nil when there is none (or
    /// the text is not JSON, which the parser has already reported).
    public static func first(in bytes: [UInt8]) -> Duplicate? {
        var stack: [Container] = []
        var index = 0
        /// The path of a value starting now, inside the innermost container.
        func childPath() -> String {
            switch stack.last {
            case nil: return ""
            case .object(_, let current, let path)?:
                let key = current ?? ""
                return path.isEmpty ? key : "\(path).\(key)"
            case .array(let position, let path)?: return "\(path)[\(position)]"
            }
        }
        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "{"):
                stack.append(.object(keys: [], current: nil, path: childPath()))
                index += 1
            case UInt8(ascii: "["):
                stack.append(.array(index: 0, path: childPath()))
                index += 1
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                stack.removeLast()
                index += 1
            case UInt8(ascii: ","):
                if case .array(let position, let path)? = stack.last {
                    stack[stack.count - 1] = .array(index: position + 1, path: path)
                }
                index += 1
            case UInt8(ascii: "\""):
                guard let (text, end) = string(bytes, from: index) else { return nil }
                index = end
                // A string is a key when it is followed by a colon, inside an object.
                var next = index
                while next < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[next]) { next += 1 }
                if next < bytes.count, bytes[next] == UInt8(ascii: ":"), case .object(var keys, _, let path)? = stack.last {
                    guard keys.insert(text).inserted else { return Duplicate(path: path, key: text) }
                    stack[stack.count - 1] = .object(keys: keys, current: text, path: path)
                    index = next + 1
                }
            default:
                index += 1
            }
        }
        return nil
    }

    /// Decodes the string starting at `start` (its opening quote); returns it and the index past
    /// its closing quote.
    private static func string(_ bytes: [UInt8], from start: Int) -> (String, Int)? {
        var scalars = String.UnicodeScalarView()
        var raw: [UInt8] = []
        var index = start + 1
        func flushRaw() {
            scalars.append(contentsOf: String(decoding: raw, as: UTF8.self).unicodeScalars)
            raw.removeAll(keepingCapacity: true)
        }
        func hex4(_ at: Int) -> UInt32? {
            guard at + 4 <= bytes.count else { return nil }
            return UInt32(String(decoding: bytes[at..<at + 4], as: UTF8.self), radix: 16)
        }
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                flushRaw()
                return (String(scalars), index + 1)
            }
            guard byte == UInt8(ascii: "\\") else {
                raw.append(byte)
                index += 1
                continue
            }
            guard index + 1 < bytes.count else { return nil }
            flushRaw()
            let escape = bytes[index + 1]
            index += 2
            switch escape {
            case UInt8(ascii: "b"): scalars.append("\u{08}")
            case UInt8(ascii: "f"): scalars.append("\u{0C}")
            case UInt8(ascii: "n"): scalars.append("\n")
            case UInt8(ascii: "r"): scalars.append("\r")
            case UInt8(ascii: "t"): scalars.append("\t")
            case UInt8(ascii: "u"):
                guard var code = hex4(index) else { return nil }
                index += 4
                // A surrogate pair spells one scalar above U+FFFF.
                if (0xD800..<0xDC00).contains(code), index + 6 <= bytes.count, bytes[index] == UInt8(ascii: "\\"),
                    bytes[index + 1] == UInt8(ascii: "u"), let low = hex4(index + 2), (0xDC00..<0xE000).contains(low)
                {
                    code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                    index += 6
                }
                scalars.append(Unicode.Scalar(code) ?? "\u{FFFD}")
            default: scalars.append(Unicode.Scalar(escape))  // \" \\ \/
            }
        }
        return nil
    }
}
