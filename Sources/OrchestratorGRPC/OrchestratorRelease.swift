/// The release of this build, shown by `orchestratord --version` and `orchctl --version`, logged
/// at start-up and sent to executors in `Welcome.server_version`. Bump it with each release, and
/// say in docs/UPGRADING.md what an operator must know about it.
public enum OrchestratorRelease {
    public static let version = "0.3.0"
}
