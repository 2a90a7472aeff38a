public import OrchestratorAPI

/// Finds descriptor files by name and by the symbols they define, for server reflection.
/// Immutable after `init`, so safe to share.
public struct ReflectionIndex: Sendable {
    private let filesByName: [String: DescriptorFile]
    private let fileBySymbol: [String: String]

    public init(files: [DescriptorFile]) {
        var filesByName: [String: DescriptorFile] = [:]
        var fileBySymbol: [String: String] = [:]
        for file in files {
            filesByName[file.name] = file
            for symbol in file.symbols where fileBySymbol[symbol] == nil {
                fileBySymbol[symbol] = file.name
            }
        }
        self.filesByName = filesByName
        self.fileBySymbol = fileBySymbol
    }

    /// The file called `name`, nil when unknown.
    public func file(named name: String) -> DescriptorFile? { filesByName[name] }

    /// The file that defines `symbol` (`pkg.Message`, `pkg.Service.Method`, `pkg.Outer.Inner`...);
    /// a leading dot is accepted.
    public func file(containingSymbol symbol: String) -> DescriptorFile? {
        let symbol = symbol.hasPrefix(".") ? String(symbol.dropFirst()) : symbol
        return fileBySymbol[symbol].flatMap { filesByName[$0] }
    }

    /// Whether `symbol` names something any file defines.
    public func contains(symbol: String) -> Bool { file(containingSymbol: symbol) != nil }

    /// `file` first, then every file it imports, directly or not, each once (depth first).
    /// Imports missing from the index are skipped: the client reports them, not us.
    public func withTransitiveDependencies(_ file: DescriptorFile) -> [DescriptorFile] {
        var result: [DescriptorFile] = []
        var seen: Set<String> = []
        var pending = [file]
        while let next = pending.popLast() {
            guard seen.insert(next.name).inserted else { continue }
            result.append(next)
            for dependency in next.dependencies.reversed() {
                if let found = filesByName[dependency], !seen.contains(dependency) {
                    pending.append(found)
                }
            }
        }
        return result
    }
}
