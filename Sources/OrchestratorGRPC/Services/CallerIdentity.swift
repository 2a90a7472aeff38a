public import NGRPC
public import OrchestratorApp
public import OrchestratorAuth

/// Who is calling, and which tenants' data it may touch.
///
/// `AuthInterceptor` stores the verified `Actor` under `key` and its `TenantGrant` under
/// `grantKey`. Without authentication (development mode) nothing is stored and every caller is
/// `Actor.anonymous`: the admin of tenant "default", allowed into every tenant.
public enum CallerIdentity {
    public static let key = "orchestrator.actor"
    public static let grantKey = "orchestrator.tenant-grant"
    /// When the call's token stops being accepted (its `exp` plus the allowed clock skew), in
    /// seconds since 1970; unset without authentication.
    public static let validUntilKey = "orchestrator.token-valid-until"

    /// When the call's token stops being accepted, in seconds since 1970; nil without authentication.
    public static func validUntil(_ context: ServerContext) -> Double? {
        context[value: validUntilKey, as: Double.self]
    }

    /// Why the call's token is no longer accepted at `now` (seconds since 1970), or nil while it
    /// is (always without authentication). Long-lived calls that act for the caller item by item
    /// (SubmitStream) check it per item; a Lease stream takes no new task after it
    /// (`ExecutorIdentity.credentialsExpireAt`, docs/SECURITY.md).
    public static func expiredToken(_ context: ServerContext, now: Double) -> String? {
        guard let until = context[value: validUntilKey, as: Double.self], now >= until else { return nil }
        return "token expired at \(Int64(until.rounded(.down))) (with the allowed clock skew) while this stream was open; "
            + "open a new one with a fresh token: the queries before this one were answered"
    }

    public static func actor(of context: ServerContext) -> Actor {
        context[value: key, as: Actor.self] ?? .anonymous
    }

    /// The tenants the caller may see and change.
    public static func grant(of context: ServerContext) -> TenantGrant {
        if let grant = context[value: grantKey, as: TenantGrant.self] { return grant }
        let actor = actor(of: context)
        return actor == .anonymous ? .all : .only([actor.tenant])
    }

    /// Whether an authenticated identity (not the development default) is calling.
    public static func isAuthenticated(_ context: ServerContext) -> Bool {
        context[value: key, as: Actor.self] != nil
    }

    /// The tenant whose workflows the caller may read and change; nil for a caller granted every
    /// tenant (a `*` admin, or anyone in development mode). Submissions always go to
    /// `actor(of:).tenant`.
    public static func tenantScope(of context: ServerContext) -> String? {
        switch grant(of: context) {
        case .all: nil
        case .only: actor(of: context).tenant
        }
    }

    /// The tenants whose tasks an executor may lease; nil = every tenant.
    public static func servedTenants(of context: ServerContext) -> Set<String>? {
        switch grant(of: context) {
        case .all: nil
        case .only(let tenants): tenants
        }
    }

    /// The executor id leases are recorded under. With authentication, the client's id is
    /// prefixed with the tenants the token serves and its subject (`tenants/sub/executor_id`), so
    /// an executor can never report, heartbeat or resume leases held under another identity's
    /// executor id — of its own tenant or of another with a subject of the same name. The
    /// tenants are the token's whole grant, sorted and comma-separated (`*` for every tenant): a
    /// token for tenants t1 and t2 was recorded as `t1/…` alone, so a t1-only token with the same
    /// subject and executor id could act on the t2 tasks it held, and the other way round (found
    /// by black-box testing). Tenants and subject have `%`, `/` and `,` percent-encoded, so the
    /// prefix ends at the second `/` whatever they contain (`sub` "a/b" with executor "w1" and
    /// `sub` "a" with executor "b/w1" used to share "a/b/w1"). In development mode the id is used
    /// as sent.
    public static func executorID(_ requested: String, context: ServerContext) -> String {
        guard isAuthenticated(context), !requested.isEmpty else { return requested }
        let tenants =
            switch grant(of: context) {
            case .all: "*"
            case .only(let tenants): tenants.sorted().map(escaped).joined(separator: ",")
            }
        return tenants + "/" + escaped(actor(of: context).subject) + "/" + requested
    }

    private static func escaped(_ part: String) -> String {
        guard part.contains(where: { $0 == "%" || $0 == "/" || $0 == "," }) else { return part }
        var result = ""
        for character in part {
            switch character {
            case "%": result += "%25"
            case "/": result += "%2F"
            case ",": result += "%2C"
            default: result.append(character)
            }
        }
        return result
    }
}
