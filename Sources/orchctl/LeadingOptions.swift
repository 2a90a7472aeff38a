/// `orchctl --address HOST:PORT get wf_…`: connection options (`ConnectionOptions`) written before
/// the subcommand, as kubectl, docker and gh accept them, are moved after its name, where
/// ArgumentParser reads them. They were refused with "Unknown option '--address'" (found by
/// black-box testing: the natural order for an alias such as `alias oc='orchctl --address …'`).
enum LeadingOptions {
    static let taking = ["--address", "--ca-file", "--tls-ca-file", "--tls-cert-file", "--tls-key-file", "--token", "--timeout"]
    static let flags = ["--tls", "--insecure-skip-verify"]

    /// `arguments` without the program name; unchanged unless connection options come first.
    /// Followed by a subcommand name, they move after it; followed by anything else that starts
    /// with a dash, that comes first, so the parser's "Unknown option" names it rather than the
    /// connection option before it (it named '--address' in `orchctl --address X --bogus get`).
    static func reordered(_ arguments: [String]) -> [String] {
        let (leading, index) = leadingConnectionOptions(arguments)
        guard !leading.isEmpty, index < arguments.count else { return arguments }
        return [arguments[index]] + leading + arguments[(index + 1)...]
    }

    /// What is wrong with `arguments` that start with connection options, when the parser would
    /// blame the first of them ("Unknown option '--address'") for what is really missing or
    /// misspelt after them: the subcommand (`orchctl --address X`, `orchctl --address X bogus`),
    /// an option's value (`orchctl --address`), or a subcommand that takes no connection options
    /// (`token`). Nil otherwise.
    static func problem(_ arguments: [String], subcommands: [String], local: Set<String>) -> String? {
        let (leading, index) = leadingConnectionOptions(arguments)
        if index < arguments.count, taking.contains(arguments[index]), index + 1 == arguments.count {
            return "Missing value for '\(arguments[index])', and a subcommand after it."
        }
        guard !leading.isEmpty else { return nil }
        guard index < arguments.count else {
            return "Missing subcommand after the connection options (e.g. 'orchctl \(arguments.joined(separator: " ")) list')."
        }
        let next = arguments[index]
        if next.hasPrefix("-") { return nil }
        if local.contains(next) { return "'\(next)' runs locally and takes no connection options." }
        if !subcommands.contains(next) {
            return "Unknown subcommand '\(next)' (subcommands: \(subcommands.joined(separator: ", ")))."
        }
        return nil
    }

    /// The connection options at the start of `arguments`, and the index of what follows them.
    private static func leadingConnectionOptions(_ arguments: [String]) -> (options: [String], next: Int) {
        var leading: [String] = []
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            if flags.contains(argument) || taking.contains(where: { argument.hasPrefix($0 + "=") }) {
                leading.append(argument)
                index += 1
            } else if taking.contains(argument), index + 1 < arguments.count {
                leading += [argument, arguments[index + 1]]
                index += 2
            } else {
                break
            }
        }
        return (leading, index)
    }
}
