public import NGRPC
public import OrchestratorAPI
import OrchestratorApp

extension WorkflowsService {
    /// The audit trail: the event log filtered, oldest first, paged. Scoped to the caller's tenant
    /// (`CallerIdentity.tenantScope`); an administrator of every tenant sees them all and may
    /// narrow to one with `tenant`.
    public func listEvents(_ request: Orchestrator_V1_ListEventsRequest, context: ServerContext) async throws -> Orchestrator_V1_ListEventsResponse {
        try await mapped(context) {
            guard let audit else { throw RPCStatus(.unimplemented, "the audit log is not available on this server") }
            guard request.pageSize >= 0, request.pageSize <= AuditService.maxPageSize else {
                throw AppError.invalidArgument(
                    "page_size must be between 1 and \(AuditService.maxPageSize) (0 = 100), got \(request.pageSize)")
            }
            guard request.afterSequence >= 0 else {
                throw AppError.invalidArgument("after_sequence must be ≥ 0, got \(request.afterSequence)")
            }
            try APIDefaults.checkInstant(request.sinceUnixMs, field: "since_unix_ms")
            try APIDefaults.checkInstant(request.untilUnixMs, field: "until_unix_ms")
            var kinds = Set<EventKind>()
            for type in request.types {
                guard let kind = type.eventKind else {
                    throw AppError.invalidArgument("types contains \(type.rawValue), which is not an orchestrator.v1.EventType this server lists")
                }
                kinds.insert(kind)
            }
            var tenant = CallerIdentity.tenantScope(of: context)
            // "*", as tokens spell every tenant, is no tenant's name: it listed nothing, silently
            // (found by black-box testing). It means no narrowing, as an empty `tenant` does.
            if request.tenant == "*" {
                guard tenant == nil else {
                    throw AppError.permissionDenied("you may read the audit trail of tenant \"\(tenant ?? "")\" only")
                }
            } else if !request.tenant.isEmpty {
                if let scope = tenant, !scope.hasSameBytes(as: request.tenant) {
                    throw AppError.permissionDenied("you may read the audit trail of tenant \"\(scope)\" only")
                }
                tenant = request.tenant
            }
            var workflowID: String?
            if !request.workflowID.isEmpty {
                // Same answer as GetWorkflow for a workflow the caller may not see: it does not exist.
                let record = try await existingWorkflowHead(request.workflowID, context: context)
                if let tenant, !record.tenant.hasSameBytes(as: tenant) { throw AppError.notFound("workflow \(request.workflowID) not found") }
                workflowID = record.workflowID
            }
            let page = try await audit.page(
                AuditQuery(
                    tenant: tenant, workflowID: workflowID, actorSubject: request.actorSubject.isEmpty ? nil : request.actorSubject,
                    kinds: kinds, since: request.sinceUnixMs > 0 ? request.sinceUnixMs : nil,
                    until: request.untilUnixMs > 0 ? request.untilUnixMs : nil, afterSequence: request.afterSequence,
                    limit: request.pageSize == 0 ? 100 : Int(request.pageSize)),
                pageToken: request.pageToken.isEmpty ? nil : request.pageToken)
            if page.events.isEmpty, let workflowID {
                // Deleted (retention) since it was looked up: NOT_FOUND, not an empty page an
                // exporter would take for the end of the trail (found by black-box testing).
                _ = try await existingWorkflowHead(workflowID, context: context)
            }
            return Orchestrator_V1_ListEventsResponse(
                events: page.events.map(Orchestrator_V1_WorkflowEvent.init), nextPageToken: page.nextPageToken ?? "")
        }
    }
}
