import OrchestratorAPI

/// Random `Everything` values from a seeded generator, covering every field kind with edge
/// values (extremes, empty, non-ASCII, unknown enum numbers). NaN is left out: it never equals
/// itself, which would hide real differences.
struct RandomMessages {
    typealias Everything = Orchestrator_Testing_V1_Everything
    typealias Inner = Orchestrator_Testing_V1_Everything.Inner

    var generator: SplitMix64

    init(seed: UInt64) { generator = SplitMix64(seed: seed) }

    mutating func chance(_ percent: UInt64) -> Bool { generator.next() % 100 < percent }
    mutating func count(_ maximum: Int) -> Int { Int(generator.next() % UInt64(maximum + 1)) }

    mutating func int64() -> Int64 {
        switch generator.next() % 4 {
        case 0: [Int64.min, Int64.max, 0, -1][count(3)]
        case 1: Int64(truncatingIfNeeded: generator.next()) >> Int64(count(62))
        default: Int64(truncatingIfNeeded: generator.next())
        }
    }

    mutating func int32() -> Int32 { Int32(truncatingIfNeeded: int64()) }

    mutating func double() -> Double {
        switch generator.next() % 5 {
        case 0: [Double.infinity, -Double.infinity, Double.greatestFiniteMagnitude, Double.leastNonzeroMagnitude][count(3)]
        default: Double(bitPattern: generator.next() & ~(0x7FF << 52)) * (chance(50) ? 1 : -1)
        }
    }

    mutating func string() -> String {
        var scalars = String.UnicodeScalarView()
        for _ in 0..<count(12) {
            let ranges: [ClosedRange<UInt32>] = [0x01...0x7F, 0x80...0x7FF, 0x800...0xD7FF, 0xE000...0xFFFD, 0x10000...0x10FFFF]
            let range = ranges[count(ranges.count - 1)]
            if let scalar = Unicode.Scalar(range.lowerBound + UInt32(generator.next() % UInt64(range.count))) {
                scalars.append(scalar)
            }
        }
        return String(scalars)
    }

    mutating func bytes() -> [UInt8] { (0..<count(20)).map { _ in UInt8(truncatingIfNeeded: generator.next()) } }

    mutating func color() -> Orchestrator_Testing_V1_Color {
        chance(20) ? .unrecognized(int32()) : Orchestrator_Testing_V1_Color(rawValue: Int32(count(3)))
    }

    mutating func inner() -> Inner { Inner(name: string(), value: int64()) }

    mutating func everything() -> Everything {
        var message = Everything()
        if chance(70) {
            message.scalars = Orchestrator_Testing_V1_Scalars(
                fDouble: double(), fFloat: Float(double()), fInt32: int32(), fInt64: int64(),
                fUint32: UInt32(truncatingIfNeeded: int64()), fUint64: UInt64(bitPattern: int64()),
                fSint32: int32(), fSint64: int64(), fFixed32: UInt32(truncatingIfNeeded: int64()),
                fFixed64: UInt64(bitPattern: int64()), fSfixed32: int32(), fSfixed64: int64(),
                fBool: chance(50), fString: string(), fBytes: bytes())
        }
        message.color = color()
        message.mode = chance(10) ? .unrecognized(int32()) : Everything.Mode(rawValue: Int32(count(2)))
        if chance(50) { message.inner = inner() }
        message.numbers = (0..<count(5)).map { _ in int32() }
        message.names = (0..<count(4)).map { _ in string() }
        message.blobs = (0..<count(3)).map { _ in bytes() }
        message.inners = (0..<count(3)).map { _ in inner() }
        message.colors = (0..<count(4)).map { _ in color() }
        message.ratios = (0..<count(4)).map { _ in double() }
        message.flags = (0..<count(4)).map { _ in chance(50) }
        for _ in 0..<count(4) { message.labels[string()] = string() }
        for _ in 0..<count(3) { message.innerByID[int64()] = inner() }
        for _ in 0..<count(3) { message.colorByCode[int32()] = color() }
        for _ in 0..<count(2) { message.byFlag[chance(50)] = string() }
        for _ in 0..<count(2) { message.blobByName[string()] = bytes() }
        switch count(5) {
        case 0: message.choice = .choiceText(string())
        case 1: message.choice = .choiceInner(inner())
        case 2: message.choice = .choiceColor(color())
        case 3: message.choice = .choiceNumber(int64())
        case 4: message.choice = .choiceBytes(bytes())
        default: message.choice = nil
        }
        message.default = string()
        message.type = int32()
        message.traceID = string()
        message.selfURL = string()
        return message
    }
}
