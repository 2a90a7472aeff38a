/// Filters for reading the audit trail (the event log) back.
public struct AuditQuery: Hashable, Sendable {
    /// nil = every tenant (an administrator of all tenants; the edge decides).
    public var tenant: String?
    public var workflowID: String?
    /// Exact `Actor.subject`; nil = anyone, the server included.
    public var actorSubject: String?
    /// Empty = every kind.
    public var kinds: Set<EventKind>
    /// Window on `StoredEvent.at`, [since, until); nil = unbounded.
    public var since: UnixMillis?
    public var until: UnixMillis?
    /// Only events with a greater sequence.
    public var afterSequence: Int64
    public var limit: Int

    public init(
        tenant: String?, workflowID: String? = nil, actorSubject: String? = nil, kinds: Set<EventKind> = [], since: UnixMillis? = nil,
        until: UnixMillis? = nil, afterSequence: Int64 = 0, limit: Int = 100
    ) {
        self.tenant = tenant
        self.workflowID = workflowID
        self.actorSubject = actorSubject
        self.kinds = kinds
        self.since = since
        self.until = until
        self.afterSequence = afterSequence
        self.limit = limit
    }
}

/// The event log read as an audit trail: filtered, oldest first.
public protocol AuditLog: Sendable {
    /// Events matching `query` with a sequence above `query.afterSequence`, ascending, at most
    /// `query.limit`. Like `EventStore.events`, only events of transactions older than every
    /// running one are returned, so paging by sequence never skips an event that commits late.
    func auditEvents(_ query: AuditQuery) async throws -> [StoredEvent]
}

/// One page of the audit trail and the cursor for the next.
public struct AuditPage: Sendable {
    public var events: [StoredEvent]
    /// nil when nothing more matches right now.
    public var nextPageToken: String?

    public init(events: [StoredEvent], nextPageToken: String?) {
        self.events = events
        self.nextPageToken = nextPageToken
    }
}

/// Pages through an `AuditLog`: page tokens are the last returned sequence, so a page boundary
/// is stable however many events arrive meanwhile.
public struct AuditService: Sendable {
    public static let maxPageSize = 1000
    let log: any AuditLog

    public init(log: any AuditLog) { self.log = log }

    /// Reads one page: `query.limit` is the page size; `pageToken` (from the previous page)
    /// moves the cursor past what that page returned.
    /// - Throws: `AppError.invalidArgument` for a malformed token or page size.
    public func page(_ query: AuditQuery, pageToken: String?) async throws -> AuditPage {
        guard (1...Self.maxPageSize).contains(query.limit) else {
            throw AppError.invalidArgument("page_size must be between 1 and \(Self.maxPageSize) (0 = 100), got \(query.limit)")
        }
        if let since = query.since, let until = query.until, until <= since {
            throw AppError.invalidArgument("until_unix_ms (\(until)) must be after since_unix_ms (\(since))")
        }
        var bounded = query
        if let pageToken {
            bounded.afterSequence = max(query.afterSequence, try Self.decode(pageToken))
        }
        // One more than asked: tells whether a next page exists without a second query.
        bounded.limit = query.limit + 1
        var events = try await log.auditEvents(bounded)
        let more = events.count > query.limit
        if more { events.removeLast(events.count - query.limit) }
        return AuditPage(events: events, nextPageToken: more ? events.last.map { Self.encode($0.sequence) } : nil)
    }

    static let tokenPrefix = "ev1."

    static func encode(_ sequence: Int64) -> String { tokenPrefix + String(sequence) }

    static func decode(_ token: String) throws -> Int64 {
        guard token.hasPrefix(tokenPrefix), let sequence = Int64(token.dropFirst(tokenPrefix.count)), sequence >= 0 else {
            throw AppError.invalidArgument("page_token is not a token this server issued")
        }
        return sequence
    }
}
