import Synchronization

/// The server TLS context of one listener, replaceable while the server runs.
///
/// New connections take the current context at accept time; a replaced context stays alive as
/// long as connections made from it do, because OpenSSL reference-counts an `SSL_CTX` from each
/// `SSL` created on it. So a reload changes what new handshakes see and leaves open connections
/// untouched. Thread-safe: the current context is guarded by `current`'s mutex.
final class ReloadableTLSContext: Sendable {
    let settings: ServerConfiguration.TLS
    private let current: Mutex<TLSContext>

    init(_ settings: ServerConfiguration.TLS) throws(TLSContext.Failure) {
        self.settings = settings
        current = Mutex(try TLSContext(server: settings))
    }

    var context: TLSContext { current.withLock { $0 } }

    /// A fresh context read from the configured files; the caller installs it with `install`
    /// once every listener's files loaded, so a broken file changes nothing.
    func load() throws(TLSContext.Failure) -> TLSContext {
        try TLSContext(server: settings)
    }

    func install(_ context: TLSContext) {
        current.withLock { $0 = context }
    }
}
