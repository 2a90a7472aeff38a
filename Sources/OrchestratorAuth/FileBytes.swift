#if canImport(Glibc)
    private import Glibc
#elseif canImport(Darwin)
    private import Darwin
#endif

/// Reads a small file (a key, a secret, a JWKS) whole.
enum FileBytes {
    /// Key files are small; anything bigger is a mistake (a wrong path), not a key.
    static let maxBytes = 1 << 20

    static func read(_ path: String) throws(AuthError) -> [UInt8] {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw AuthError(.invalidKey, "cannot read \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(descriptor) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16384)
        while true {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw AuthError(.invalidKey, "cannot read \(path): \(String(cString: strerror(errno)))")
            }
            if count == 0 { return bytes }
            bytes += chunk[0..<count]
            if bytes.count > maxBytes { throw AuthError(.invalidKey, "\(path) is larger than \(maxBytes) bytes; not a key file") }
        }
    }
}
