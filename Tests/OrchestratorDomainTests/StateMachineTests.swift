import Testing
@testable import OrchestratorDomain

@Suite("Task state machine")
struct TaskStateMachineTests {
    @Test func happyPathRunsOneAttempt() throws {
        var task = TaskLifecycle(maxAttempts: 3)
        for event: TaskEvent in [.dependenciesSatisfied, .lease, .start, .succeed] { task = try task.transition(event) }
        #expect(task.state == .succeeded)
        #expect(task.attempt == 1)
    }

    @Test func leaseCountsAttemptsAsFencingTokens() throws {
        var task = try TaskLifecycle(state: .ready, maxAttempts: 3).transition(.lease)
        #expect(task.attempt == 1)
        task = try task.transition(.leaseExpire)
        #expect(task.state == .ready)
        task = try task.transition(.lease)
        #expect(task.attempt == 2)
    }

    @Test func failureRetriesUntilAttemptsRunOut() throws {
        var task = TaskLifecycle(state: .ready, maxAttempts: 3)
        for attempt in 1...2 {
            task = try task.transition(.lease).transition(.start).transition(.fail)
            #expect(task.state == .ready, "attempt \(attempt) of 3 should be retried")
            #expect(task.attempt == attempt)
        }
        task = try task.transition(.lease).transition(.fail)
        #expect(task.state == .failed)
        #expect(task.attempt == 3)
    }

    @Test func lostLeaseOnLastAttemptFails() throws {
        let task = try TaskLifecycle(state: .ready, maxAttempts: 1).transition(.lease).transition(.start)
        #expect(try task.transition(.leaseExpire).state == .failed)
    }

    @Test func permanentFailureSkipsRetries() throws {
        let task = try TaskLifecycle(state: .ready, maxAttempts: 5).transition(.lease).transition(.failPermanently)
        #expect(task.state == .failed)
        #expect(task.attempt == 1)
    }

    @Test func illegalTransitionIsATypedErrorNamingLegalEvents() {
        let task = TaskLifecycle()
        #expect(throws: TransitionError(
            machine: "task", state: "pending", event: "start", legalEvents: ["dependenciesSatisfied", "cancel", "skip"])
        ) {
            try task.transition(.start)
        }
        do {
            _ = try task.transition(.succeed)
            Issue.record("succeed from pending must throw")
        } catch {
            #expect(error.description.contains("`succeed` is not allowed in state `pending`"))
        }
    }

    @Test(arguments: [TaskState.succeeded, .failed, .cancelled, .skipped])
    func terminalStatesAcceptNoEvent(state: TaskState) {
        let task = TaskLifecycle(state: state, attempt: 1)
        for event in TaskEvent.allCases {
            #expect(throws: TransitionError.self) { try task.transition(event) }
        }
        #expect(state.isTerminal)
    }

    /// The legal (state, event) pairs, written independently of the table so that a table edit that
    /// changes behaviour fails here.
    @Test func tableAllowsExactlyTheDocumentedPairs() {
        let legal: [TaskState: Set<TaskEvent>] = [
            .pending: [.dependenciesSatisfied, .cancel, .skip],
            .ready: [.lease, .cancel, .skip],
            .leased: [.start, .succeed, .fail, .failPermanently, .leaseExpire, .cancel],
            .running: [.succeed, .fail, .failPermanently, .leaseExpire, .cancel],
        ]
        for state in TaskState.allCases {
            let task = TaskLifecycle(state: state, attempt: 1, maxAttempts: 3)
            for event in TaskEvent.allCases {
                #expect(task.allows(event) == (legal[state]?.contains(event) ?? false), "\(state) + \(event)")
            }
        }
    }

    @Test func retryBackoffGrowsAndCaps() {
        let policy = RetryPolicy(maxAttempts: 10, initialBackoffMillis: 100, maxBackoffMillis: 1_000, backoffMultiplier: 2)
        #expect((1...6).map { policy.backoff(afterAttempt: $0) } == [100, 200, 400, 800, 1_000, 1_000])
    }

    /// Found by black-box testing: a backoff of Int.max trapped converting the delay back to Int,
    /// and 10^16 ms overflowed the retry time further on (a crash on every restart).
    @Test func backoffIsTotalAndAtMost366Days() {
        let longest = RetryPolicy.longestBackoffMillis
        let extremes = [
            RetryPolicy(maxAttempts: 5, initialBackoffMillis: .max, maxBackoffMillis: .max, backoffMultiplier: 2),
            RetryPolicy(maxAttempts: 5, initialBackoffMillis: 10_000_000_000_000_000, maxBackoffMillis: 10_000_000_000_000_000),
            RetryPolicy(maxAttempts: 5, initialBackoffMillis: 1_000, maxBackoffMillis: .max, backoffMultiplier: 1e308),
            RetryPolicy(maxAttempts: 5, initialBackoffMillis: 1_000, maxBackoffMillis: .max, backoffMultiplier: .infinity),
            RetryPolicy(maxAttempts: 5, initialBackoffMillis: 1_000, maxBackoffMillis: .max, backoffMultiplier: .nan),
            RetryPolicy(maxAttempts: 5, initialBackoffMillis: -5, maxBackoffMillis: -1, backoffMultiplier: -3),
        ]
        for policy in extremes {
            for attempt in [1, 2, 3, 64, 10_000] {
                let delay = policy.backoff(afterAttempt: attempt)
                #expect((0...longest).contains(delay), "\(policy) after attempt \(attempt): \(delay)")
            }
        }
        #expect(extremes[0].backoff(afterAttempt: 1) == longest)
        #expect(extremes[2].backoff(afterAttempt: 1) == 1_000)
        #expect(extremes[2].backoff(afterAttempt: 2) == longest)
        #expect(extremes[4].backoff(afterAttempt: 3) == 1_000)  // NaN growth: no growth
    }
}

@Suite("Workflow state machine")
struct WorkflowStateMachineTests {
    @Test func happyPath() throws {
        var workflow = WorkflowLifecycle()
        for event: WorkflowEvent in [.startPlanning, .planAdopted, .graphExtended, .allTasksSucceeded] {
            workflow = try workflow.transition(event)
        }
        #expect(workflow.state == .succeeded)
    }

    @Test(arguments: [WorkflowState.pending, .planning, .running])
    func cancellableUntilFinished(state: WorkflowState) throws {
        #expect(try WorkflowLifecycle(state: state).transition(.cancel).state == .cancelled)
    }

    @Test func planningFailureAndTaskFailureFail() throws {
        #expect(try WorkflowLifecycle(state: .planning).transition(.planningFailed).state == .failed)
        #expect(try WorkflowLifecycle(state: .running).transition(.taskFailed).state == .failed)
    }

    @Test func illegalTransitionsThrow() {
        #expect(throws: TransitionError.self) { try WorkflowLifecycle().transition(.allTasksSucceeded) }
        for state in [WorkflowState.succeeded, .failed, .cancelled] {
            for event in WorkflowEvent.allCases {
                #expect(throws: TransitionError.self) { try WorkflowLifecycle(state: state).transition(event) }
            }
        }
    }

    @Test func workflowVersionsAreNumberedWithoutGaps() throws {
        var workflow = Workflow(id: "w1", query: Query(text: "x"))
        try workflow.append(DagVersion(number: 1, dag: CanonicalShape.linear.dag, reason: "planned"))
        #expect(throws: DagVersionConflict(expected: 2, actual: 3)) {
            try workflow.append(DagVersion(number: 3, dag: CanonicalShape.linear.dag, reason: "skips one"))
        }
        #expect(workflow.currentVersion?.number == 1)
    }
}
