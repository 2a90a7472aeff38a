/// What a caller may do. The gRPC edge maps roles to methods (docs/SECURITY.md has the table).
public enum Role: String, Sendable, Hashable, CaseIterable {
    /// Submits, plans, updates, cancels and reads workflows of its tenant.
    case submitter
    /// Leases and reports tasks of the tenants it serves.
    case executor
    /// Reads workflows of its tenant (get, list, DAG, watch).
    case viewer
    /// Everything; with tenant `*`, in every tenant.
    case admin
}

/// Which tenants' data a caller may touch.
public enum TenantGrant: Sendable, Hashable {
    /// Every tenant: an admin whose `tenant` claim is `*`.
    case all
    /// These tenants only (one, except for executors serving several).
    case only(Set<String>)

    /// Byte for byte: `Set.contains` would match a canonically equivalent spelling (the Kelvin
    /// sign for "K"), which the database, comparing bytes, holds as another tenant.
    public func contains(_ tenant: String) -> Bool {
        switch self {
        case .all: true
        case .only(let tenants): tenants.contains { $0.utf8.elementsEqual(tenant.utf8) }
        }
    }
}

/// A verified token's identity.
public struct VerifiedIdentity: Sendable, Hashable {
    /// `sub`.
    public var subject: String
    public var role: Role
    /// The tenant the caller acts in: where its submissions go. For a `*` admin this is
    /// `VerifiedIdentity.crossTenantHome`; for an executor serving several tenants, its `tenant`
    /// claim if given, else the first of `tenants` in sorted order.
    public var tenant: String
    public var grant: TenantGrant
    /// `exp`, seconds since 1970.
    public var expiresAt: Double

    /// The claim value that grants an admin every tenant.
    public static let allTenants = "*"
    /// Where a cross-tenant admin's own submissions are stored.
    public static let crossTenantHome = "default"

    public init(subject: String, role: Role, tenant: String, grant: TenantGrant, expiresAt: Double) {
        self.subject = subject
        self.role = role
        self.tenant = tenant
        self.grant = grant
        self.expiresAt = expiresAt
    }
}
