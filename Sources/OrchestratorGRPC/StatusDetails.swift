public import NGRPC
public import OrchestratorAPI

/// Encodes `grpc-status-details-bin`: a `google.rpc.Status` (code = 1, message = 2, repeated
/// `google.protobuf.Any` details = 3) whose details are `orchestrator.v1.ValidationProblem` messages.
///
/// google.rpc protos are not generated in this repository; the envelope is three fields, so it is
/// written by hand with the protobuf wire format, and the problems themselves by the generated code.
public enum StatusDetails {
    public static let problemTypeURL = "type.googleapis.com/orchestrator.v1.ValidationProblem"
    /// Largest encoding attached, message included (base64 makes it a third larger on the wire: 4 KiB
    /// plus the 2 KiB message stays under the 8 KiB clients accept). Problems that do not fit
    /// are left out of the details; the status message still counts them. See
    /// `StatusMapping.maxMessageWireBytes` for why trailers are kept small.
    public static let maxBytes = 3072

    /// Code of the last detail when not every problem is attached: a program reading only the
    /// details learns that some are missing, and how many (they were left out without a word;
    /// found by black-box testing).
    public static let moreProblemsCode = "MORE_PROBLEMS"

    /// nil when there is nothing to attach or a problem cannot be encoded (the message still lists them).
    /// `total`: how many problems there are in all (more than `problems` when validation stopped
    /// keeping them); those not attached are counted by a final `MORE_PROBLEMS` entry.
    public static func encode(
        code: RPCStatus.Code, message: String, problems: [Orchestrator_V1_ValidationProblem], total: Int? = nil
    ) -> [UInt8]? {
        guard !problems.isEmpty else { return nil }
        let total = max(total ?? problems.count, problems.count)
        var out: [UInt8] = []
        if code.rawValue != 0 {
            out.append(0x08)  // field 1, varint
            appendVarint(UInt64(code.rawValue), to: &out)
        }
        appendBytes(field: 2, Array(message.utf8), to: &out)
        // Room kept for the marker, at its largest (no fewer digits than any count it may hold).
        let markerRoom = detail(moreProblems(left: total, total: total))?.count ?? 0
        var attached = 0
        for (index, problem) in problems.enumerated() {
            guard let field = detail(problem) else { return nil }
            let isLast = index == problems.count - 1 && total == problems.count
            let room = maxBytes - out.count - (isLast ? 0 : markerRoom)
            if field.count > room {
                // The first problem is attached even when it alone is too long, its message cut
                // short: details holding only MORE_PROBLEMS named nothing (found by black-box testing).
                if attached == 0 {
                    var cut = problem
                    // Keys that take half the room go (the message names them), then the message is cut.
                    if cut.taskKeys.reduce(0, { $0 + $1.utf8.count }) > room / 2 { cut.taskKeys = [] }
                    if let size = detail(cut)?.count, size > room { cut = clipped(cut, by: size - room) }
                    if let cutField = detail(cut), cutField.count <= room {
                        out += cutField
                        attached = 1
                    }
                }
                break
            }
            out += field
            attached += 1
        }
        if attached < total, let marker = detail(moreProblems(left: total - attached, total: total)) {
            out += marker
        }
        return out
    }

    /// `problem` with its message shorter by at least `excess` bytes, ending in "…".
    private static func clipped(_ problem: Orchestrator_V1_ValidationProblem, by excess: Int) -> Orchestrator_V1_ValidationProblem {
        var problem = problem
        let keep = max(0, problem.message.utf8.count - excess - 8)
        var kept = ""
        var size = 0
        for character in problem.message {
            size += character.utf8.count
            if size > keep { break }
            kept.append(character)
        }
        problem.message = kept + "…"
        return problem
    }

    private static func moreProblems(left: Int, total: Int) -> Orchestrator_V1_ValidationProblem {
        Orchestrator_V1_ValidationProblem(
            code: moreProblemsCode,
            message: "\(left) more problem\(left == 1 ? "" : "s") not attached (\(total) in all; the status message lists more): "
                + "fix these and send again to see the rest")
    }

    /// One `details` entry: field 3 holding an `Any` of the problem.
    private static func detail(_ problem: Orchestrator_V1_ValidationProblem) -> [UInt8]? {
        guard let value = try? problem.serializedBytes() else { return nil }
        var any: [UInt8] = []
        appendBytes(field: 1, Array(problemTypeURL.utf8), to: &any)
        appendBytes(field: 2, value, to: &any)
        var field: [UInt8] = []
        appendBytes(field: 3, any, to: &field)
        return field
    }

    /// Reads the problems back out of `grpc-status-details-bin` bytes (for tests and Swift clients).
    public static func decodeProblems(_ bytes: [UInt8]) -> [Orchestrator_V1_ValidationProblem]? {
        var problems: [Orchestrator_V1_ValidationProblem] = []
        var reader = Reader(bytes: bytes[...])
        while !reader.isAtEnd {
            guard let (field, payload) = reader.nextLengthDelimitedOrSkip() else { return nil }
            guard field == 3, let any = payload else { continue }
            var inner = Reader(bytes: any)
            var typeURL = ""
            var value: [UInt8] = []
            while !inner.isAtEnd {
                guard let (f, p) = inner.nextLengthDelimitedOrSkip() else { return nil }
                if f == 1, let p { typeURL = String(decoding: p, as: UTF8.self) }
                if f == 2, let p { value = Array(p) }
            }
            guard typeURL == problemTypeURL, let problem = try? Orchestrator_V1_ValidationProblem(serializedBytes: value) else { continue }
            problems.append(problem)
        }
        return problems
    }

    private static func appendVarint(_ value: UInt64, to out: inout [UInt8]) {
        var v = value
        while v >= 0x80 {
            out.append(UInt8(v & 0x7F) | 0x80)
            v >>= 7
        }
        out.append(UInt8(v))
    }

    private static func appendBytes(field: UInt64, _ bytes: [UInt8], to out: inout [UInt8]) {
        appendVarint(field << 3 | 2, to: &out)
        appendVarint(UInt64(bytes.count), to: &out)
        out += bytes
    }

    /// A minimal wire-format reader: varint and length-delimited fields (all `Status` and `Any` use).
    private struct Reader {
        var bytes: ArraySlice<UInt8>
        var isAtEnd: Bool { bytes.isEmpty }

        mutating func varint() -> UInt64? {
            var result: UInt64 = 0
            var shift: UInt64 = 0
            while let byte = bytes.popFirst() {
                guard shift < 64 else { return nil }
                result |= UInt64(byte & 0x7F) << shift
                if byte < 0x80 { return result }
                shift += 7
            }
            return nil
        }

        /// The next field's number and, when length-delimited, its payload (nil for a skipped varint).
        mutating func nextLengthDelimitedOrSkip() -> (UInt64, ArraySlice<UInt8>?)? {
            guard let tag = varint() else { return nil }
            switch tag & 7 {
            case 0:
                guard varint() != nil else { return nil }
                return (tag >> 3, nil)
            case 2:
                guard let length = varint(), length <= UInt64(bytes.count) else { return nil }
                let payload = bytes.prefix(Int(length))
                bytes = bytes.dropFirst(Int(length))
                return (tag >> 3, payload)
            default:
                return nil
            }
        }
    }
}
