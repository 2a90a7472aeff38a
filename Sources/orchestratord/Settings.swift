import Foundation
import OrchestratorGRPC

/// One configurable setting: its flag, environment variable, config-file key and default.
/// Every setting resolves in the order flag > environment > config file > default, and is
/// printed at start-up (secrets masked).
struct SettingDefinition: Sendable {
    let key: String           // config-file key, e.g. "grpc-address"
    let environment: String   // e.g. "ORCHESTRATOR_GRPC_ADDRESS"
    let defaultValue: String?
    let isSecret: Bool
    let help: String
    /// What an unset value means, for the start-up banner ("(unset: an embedded cluster)"): a bare
    /// "(unset)" beside a catalog the server then loaded read as a contradiction (found by
    /// black-box testing).
    let whenUnset: String?

    init(_ key: String, default defaultValue: String?, secret: Bool = false, whenUnset: String? = nil, help: String) {
        self.key = key
        self.environment = "ORCHESTRATOR_" + key.uppercased().replacingOccurrences(of: "-", with: "_")
        self.defaultValue = defaultValue
        self.isSecret = secret
        self.whenUnset = whenUnset
        self.help = help
    }
}

/// Where a resolved value came from, shown in the start-up banner.
enum SettingSource: String, Sendable {
    case flag, environment = "env", file, `default`
}

/// The resolved configuration of one orchestratord process.
struct ResolvedSettings: Sendable {
    struct Entry: Sendable {
        let definition: SettingDefinition
        let value: String?
        let source: SettingSource
    }

    let entries: [Entry]

    func value(_ key: String) -> String? {
        entries.first { $0.definition.key == key }?.value
    }

    /// Resolves every definition from flags, the environment and a config file.
    /// - Parameters:
    ///   - flags: values given on the command line, by key.
    ///   - environment: the process environment.
    ///   - file: the parsed config file (`key: value` pairs), if one was given.
    static func resolve(
        _ definitions: [SettingDefinition], flags: [String: String], environment: [String: String], file: [String: String]
    ) -> ResolvedSettings {
        ResolvedSettings(entries: definitions.map { definition in
            if let value = flags[definition.key] { return Entry(definition: definition, value: value, source: .flag) }
            if let value = environment[definition.environment], !value.isEmpty {
                return Entry(definition: definition, value: value, source: .environment)
            }
            if let value = file[definition.key] { return Entry(definition: definition, value: value, source: .file) }
            return Entry(definition: definition, value: definition.defaultValue, source: .default)
        })
    }

    /// `ORCHESTRATOR_*` variables of `environment` that are no setting: a misspelt one
    /// (`ORCHESTRATOR_LEASETTL=5`) was ignored without a word, while an unknown config-file key
    /// is refused (found by black-box testing). Names orchctl and the test tools read are not
    /// reported. Sorted.
    static func unknownEnvironmentVariables(_ environment: [String: String], definitions: [SettingDefinition]) -> [String] {
        let settings = Set(definitions.map(\.environment))
        let otherTools: Set<String> = [
            "ORCHESTRATOR_ADDRESS", "ORCHESTRATOR_TOKEN", "ORCHESTRATOR_CLIENT_CERT_FILE", "ORCHESTRATOR_CLIENT_KEY_FILE",
            "ORCHESTRATOR_TEST_DATABASE_URL",
        ]
        return environment.keys.filter { $0.hasPrefix("ORCHESTRATOR_") && !settings.contains($0) && !otherTools.contains($0) }.sorted()
    }

    /// One line per setting, for the start-up log.
    var banner: [String] {
        let width = entries.map(\.definition.key.count).max() ?? 0
        return entries.map { entry in
            let shown: String
            switch entry.value {
            case nil: shown = entry.definition.whenUnset.map { "(unset: \($0))" } ?? "(unset)"
            case let value? where entry.definition.isSecret: shown = value.isEmpty ? "" : "****"
            case let value?: shown = value
            }
            return "  \(entry.definition.key.padding(toLength: width, withPad: " ", startingAt: 0))  \(shown)  [\(entry.source.rawValue)]"
        }
    }
}

enum ConfigFileError: Error, CustomStringConvertible {
    case unreadable(path: String, reason: String)
    case malformed(path: String, reason: String)

    var description: String {
        switch self {
        case .unreadable(let path, let reason): "cannot read config file \(path): \(reason)"
        case .malformed(let path, let reason): "config file \(path) is not valid: \(reason)"
        }
    }
}

/// Reads a JSON object of setting keys to values (strings, numbers or booleans).
func loadConfigFile(_ path: String, known: Set<String>) throws -> [String: String] {
    let data: Data
    data = try readConfigBytes(path)
    let object: Any
    do {
        object = try JSONSerialization.jsonObject(with: data)
    } catch {
        throw ConfigFileError.malformed(path: path, reason: "not valid JSON: \(JSONSyntaxError.describe(error, in: Array(data)))")
    }
    if let comma = JSONSyntaxError.trailingComma(in: Array(data)) {
        throw ConfigFileError.malformed(path: path, reason: "not valid JSON: \(comma)")
    }
    // Inside a nested object it is no setting: the value check below refuses the object itself.
    if let duplicate = JSONDuplicateKeys.first(in: Array(data)), duplicate.path.isEmpty {
        throw ConfigFileError.malformed(path: path, reason: "setting \"\(duplicate.key)\" appears twice")
    }
    guard let dictionary = object as? [String: Any] else {
        throw ConfigFileError.malformed(path: path, reason: "expected a JSON object of setting names to values")
    }
    var values: [String: String] = [:]
    for (key, raw) in dictionary {
        guard known.contains(key) else {
            throw ConfigFileError.malformed(path: path, reason: "unknown setting \"\(key)\" (known: \(known.sorted().joined(separator: ", ")))")
        }
        switch raw {
        case let string as String: values[key] = string
        // JSON true/false arrive as NSNumbers of type "c": spelled out, not as 1/0 (which a numeric
        // setting took silently: {"lease-ttl": true} became a TTL of 1 s).
        case let number as NSNumber where String(cString: number.objCType) == "c": values[key] = number.boolValue ? "true" : "false"
        // A whole number written with a fraction or exponent (20.0, 1e1) is that integer: it was
        // refused ("20.0" is not an integer) or shown as "10.0" (found by black-box testing).
        case let number as NSNumber:
            let value = number.doubleValue
            if value.rounded() == value, abs(value) < 1e15 { values[key] = String(Int64(value)) } else { values[key] = number.stringValue }
        default: throw ConfigFileError.malformed(path: path, reason: "setting \"\(key)\" must be a string, number or boolean")
        }
    }
    return values
}

/// The config file's bytes, with reasons a reader understands: Foundation said "You don't have
/// permission" for /dev/zero and "(NSCocoaErrorDomain error 256.)" for a directory (found by
/// black-box testing). Settings files are small; more than 1 MiB is refused unread.
private func readConfigBytes(_ path: String) throws -> Data {
    var status = stat()
    guard stat(path, &status) == 0 else {
        throw ConfigFileError.unreadable(path: path, reason: String(cString: strerror(errno)))
    }
    if (status.st_mode & S_IFMT) == S_IFDIR {
        throw ConfigFileError.unreadable(path: path, reason: "it is a directory, not a JSON file")
    }
    // A FIFO (a shell's `<(…)` included) blocked the start for ever; devices read without end.
    guard (status.st_mode & S_IFMT) == S_IFREG else {
        throw ConfigFileError.unreadable(path: path, reason: "it is not a regular file (a device, a pipe or a socket)")
    }
    guard let handle = FileHandle(forReadingAtPath: path) else {
        throw ConfigFileError.unreadable(path: path, reason: String(cString: strerror(errno)))
    }
    defer { try? handle.close() }
    let limit = 1 << 20
    let data: Data
    do {
        data = try handle.read(upToCount: limit + 1) ?? Data()
    } catch {
        throw ConfigFileError.unreadable(path: path, reason: String(cString: strerror(errno)))
    }
    if data.count > limit {
        throw ConfigFileError.unreadable(path: path, reason: "it is larger than 1 MiB, far more than any settings file")
    }
    return data
}
