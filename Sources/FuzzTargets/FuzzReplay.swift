#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The entry point of a fuzz executable built without the fuzzer (a normal `swift build`): runs
/// the target once on every file named on the command line or found (not recursively) in a
/// directory named there, so corpora and saved crashes replay as plain regression tests.
///
/// A crashing input stops the process with the target's own trap (the message names the
/// invariant); a clean run prints one line per path and exits 0.
public enum FuzzReplay {
    /// Replays `arguments` (paths) through `target`; returns the number of inputs run.
    @discardableResult
    public static func run(_ arguments: [String], name: String, target: ([UInt8]) -> Void) -> Int {
        var total = 0
        for path in arguments {
            let files = inputs(at: path)
            for file in files {
                guard let bytes = read(file) else {
                    print("\(name): cannot read \(file)")
                    exit(2)
                }
                target(bytes)
            }
            print("\(name): replayed \(files.count) input\(files.count == 1 ? "" : "s") from \(path)")
            total += files.count
        }
        return total
    }

    /// The files at `path`: itself when a file, its regular files (sorted, dotfiles skipped) when a
    /// directory, none when it does not exist (a target may have no regressions yet).
    public static func inputs(at path: String) -> [String] {
        var info = stat()
        guard stat(path, &info) == 0 else { return [] }
        guard info.st_mode & S_IFMT == S_IFDIR else { return [path] }
        guard let directory = opendir(path) else { return [] }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            guard !name.hasPrefix(".") else { continue }
            let full = path + "/" + name
            var child = stat()
            if stat(full, &child) == 0, child.st_mode & S_IFMT == S_IFREG { names.append(full) }
        }
        return names.sorted()
    }

    /// The whole file, or nil when it cannot be read.
    public static func read(_ path: String) -> [UInt8]? {
        guard let file = fopen(path, "rb") else { return nil }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = chunk.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, file) }
            bytes.append(contentsOf: chunk[0..<count])
            if count < chunk.count { return ferror(file) == 0 ? bytes : nil }
        }
    }
}
