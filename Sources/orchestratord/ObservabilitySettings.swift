import OrchestratorObservability

/// Settings of logs and the admin HTTP port (docs/OBSERVABILITY.md).
struct ObservabilitySettings: Sendable {
    /// Where the admin HTTP server listens; nil = no admin server.
    var adminAddress: HostPort?
    var logFormat: LogFormat

    init(_ settings: ResolvedSettings) throws {
        // `none` (or `off`) disables it too: an empty environment variable counts as unset.
        let adminText = settings.value("admin-address")?.lowercased()
        adminAddress = adminText == "none" || adminText == "off" ? nil : try ServerSettings.address(settings, "admin-address")
        let formatText = settings.value("log-format") ?? "json"
        guard let format = LogFormat(rawValue: formatText.lowercased()) else {
            throw SettingsError(description: "log-format \"\(formatText)\" is not one of json, text")
        }
        logFormat = format
    }
}
