/// Every orchestratord option takes a value, and the numeric ones take the next argument
/// unconditionally so that a negative number reaches validation ("must be in 0...3600") instead
/// of being read as a flag. The price: `--lease-ttl --log-level debug` took "--log-level" as the
/// TTL and then complained about an unexpected "debug". This names the real mistake first.
enum MissingValueCheck {
    /// The first option in `arguments` (without `=value`) followed by nothing or by another
    /// `--option`, as a message; nil when every option has its value.
    static func problem(in arguments: [String], options: Set<String>) -> String? {
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            if argument == "--" { return nil }
            if argument.hasPrefix("--"), !argument.contains("="), options.contains(String(argument.dropFirst(2))) {
                let next = index + 1 < arguments.count ? arguments[index + 1] : nil
                guard let next, !next.hasPrefix("--") else {
                    return "\(argument) needs a value" + (next.map { " (the next argument is the option \($0))" } ?? "")
                }
                index += 2
                continue
            }
            index += 1
        }
        return nil
    }
}
