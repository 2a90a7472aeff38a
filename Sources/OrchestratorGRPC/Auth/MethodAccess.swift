public import NGRPC
public import OrchestratorAuth

/// Which roles may call which method: the authorization table of the gRPC edge.
///
/// | service / method                                     | roles                         |
/// |------------------------------------------------------|-------------------------------|
/// | grpc.health.v1.Health/*                              | anyone, no token (probes)     |
/// | grpc.reflection.*                                    | any valid token               |
/// | Workflows Get/List/GetDag/Watch/ListEvents/ListTasks | viewer, submitter, admin      |
/// | Workflows, every other method (writes, planning)     | submitter, admin              |
/// | orchestrator.v1.Executors/*                          | executor, admin               |
/// | anything else                                        | admin                         |
///
/// The table decides methods; tenant scoping of the data is the services' job (`CallerIdentity`).
public struct MethodAccess: Sendable {
    public enum Rule: Sendable, Equatable {
        /// No token needed.
        case open
        /// Any verified token.
        case authenticated
        /// A verified token with one of these roles.
        case roles(Set<Role>)
    }

    public static let workflowsService = "orchestrator.v1.Workflows"
    public static let executorsService = "orchestrator.v1.Executors"
    /// Workflows methods that only read.
    public static let readMethods: Set<String> = [
        "GetWorkflow", "ListWorkflows", "GetDag", "WatchWorkflow", "ListEvents", "ListTasks",
    ]

    public init() {}

    public func rule(for method: MethodDescriptor) -> Rule {
        switch method.service {
        case "grpc.health.v1.Health":
            return .open
        case "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection":
            return .authenticated
        case Self.workflowsService:
            return Self.readMethods.contains(method.method) ? .roles([.viewer, .submitter, .admin]) : .roles([.submitter, .admin])
        case Self.executorsService:
            return .roles([.executor, .admin])
        default:
            return .roles([.admin])
        }
    }
}
