public import NGRPC
public import OrchestratorApp

/// Who is calling. Authentication (an interceptor) stores the verified `Actor` in the call's
/// context under `key`; without authentication every caller is the development identity.
public enum CallerIdentity {
    public static let key = "orchestrator.actor"

    public static func actor(of context: ServerContext) -> Actor {
        context[value: key, as: Actor.self] ?? .anonymous
    }

    /// The tenant whose data the caller may see; nil for an admin, who sees every tenant.
    public static func tenantScope(of context: ServerContext) -> String? {
        let actor = actor(of: context)
        return actor.role == "admin" && actor.tenant == Actor.anonymous.tenant && actor.subject == Actor.anonymous.subject
            ? nil : actor.tenant
    }
}
