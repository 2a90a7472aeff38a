import OrchestratorDomain

/// What one PollTasks response carries. The tasks of a poll are claimed together, but each
/// assignment may carry megabytes (upstream results, payload, the query's inputs): together they
/// can outgrow what the client accepts (`maxAssignmentBytes`, gRPC's 4 MiB by default), and a
/// client refusing the response left every one of them leased to nobody until its TTL ran out,
/// an attempt spent. The response takes the tasks that fit; the rest go back to the queue unsent,
/// their attempt not spent, for the next poll.
extension DispatchService {
    /// The claimed tasks whose assignments fit together in one response (the first always: a
    /// single assignment over the limit was failed by the claim), and the rest.
    func splitForOneResponse(_ claimed: [ClaimedTask]) -> (sent: [ClaimedTask], unsent: [ClaimedTask]) {
        guard let limit = configuration.maxAssignmentBytes, claimed.count > 1 else { return (claimed, []) }
        // Exact sizes cost an encoding each: only when the carried bytes alone come within a
        // quarter of the limit (the rest of an assignment — ids, key, spec — is small).
        let carried = claimed.reduce(0) { $0 + $1.assignmentBytesLowerBound + Self.assignmentOverheadAllowance }
        guard carried > limit - limit / 4 else { return (claimed, []) }
        var total = 0
        for (index, task) in claimed.enumerated() {
            let size = configuration.assignmentSize(task)
            total += Self.fieldEnvelopeBytes(size) + size
            if total > limit && index > 0 {
                return (Array(claimed[..<index]), Array(claimed[index...]))
            }
        }
        return (claimed, [])
    }

    /// A generous bound on an assignment's bytes besides its carried payload, results and inputs.
    static let assignmentOverheadAllowance = 4096

    /// Bytes an embedded message of `size` bytes adds to its container: the field's tag (one byte
    /// for field numbers below 16) and its varint length.
    static func fieldEnvelopeBytes(_ size: Int) -> Int {
        var length = 1
        var rest = size >> 7
        while rest > 0 {
            length += 1
            rest >>= 7
        }
        return 1 + length
    }

    /// Undoes the claims of tasks that will not be sent (`TaskDispatchStore.returnUnsentLeases`)
    /// and drops them from the lease table. Should that fail, the leases lapse after their TTL as
    /// before.
    func returnUnsent(_ tasks: [ClaimedTask], executorID: String, reason: String) async {
        guard !tasks.isEmpty else { return }
        for task in tasks {
            _ = registry.remove(task.lease, ownedBy: executorID)
            task.dispatchSpan?.end()
        }
        do {
            let returned = try await Self.evenIfCancelled { [store, clock] in
                try await store.returnUnsentLeases(tasks.map(\.lease), executorID: executorID, reason: reason, now: clock.now())
            }
            logger.info("claimed tasks returned unsent", metadata: [
                "executor_id": "\(executorID)", "count": "\(returned)", "reason": "\(reason)",
            ])
            signals.signal(.tasksReady)
        } catch {
            logger.warning("could not return unsent tasks; their leases will lapse", metadata: [
                "executor_id": "\(executorID)", "count": "\(tasks.count)", "error": "\(error)",
            ])
        }
    }
}
