/// The release of this build, shown by `orchestratord --version` and `orchctl --version`, logged
/// at start-up and sent to executors in `Welcome.server_version`. Bump it with each release, and
/// say in docs/UPGRADING.md what an operator must know about it. Between releases it names the
/// next one with `-dev` (SemVer pre-release): a build from `main` with migrations the last release
/// lacks must not call itself that release (found by black-box testing: it said 0.3.0 while
/// 0.3.0 servers refused its database).
public enum OrchestratorRelease {
    public static let version = "0.4.0-dev"
}
