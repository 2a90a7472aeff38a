import Synchronization
import Testing

@testable import NGRPC

/// Counts how often the loop ran it.
final class LoopTaskSpy: LoopTask {
    let runs = Atomic<Int>(0)
    func runOnLoop() { runs.add(1, ordering: .relaxed) }
}

@Suite("Stream message queues (no sockets)")
struct MessageQueueTests {
    let group = EventLoopGroup(threads: 1)

    /// Each message costs its bytes plus this (its allocation and slot).
    let overhead = InboundMessageQueue.messageOverhead

    @Test func inboundDeliversInOrderThenEnds() async throws {
        let spy = LoopTaskSpy()
        let queue = InboundMessageQueue(limit: 2 * overhead + 100, loop: group.loops[0], owner: spy)
        #expect(queue.push([1]))
        #expect(queue.push([2, 2]))
        queue.finish()
        #expect(try await queue.next() == [1])
        #expect(try await queue.next() == [2, 2])
        #expect(try await queue.next() == nil)
        group.shutdown()
    }

    @Test func inboundFailureAfterBufferedMessages() async throws {
        let spy = LoopTaskSpy()
        let queue = InboundMessageQueue(limit: 100, loop: group.loops[0], owner: spy)
        queue.push([7])
        queue.finish(failure: RPCStatus(.notFound, "gone"))
        #expect(try await queue.next() == [7])
        await #expect(throws: RPCStatus(.notFound, "gone")) { _ = try await queue.next() }
        group.shutdown()
    }

    /// The peer reset the stream or closed the connection after sending: what it sent before is
    /// still read (a lease stream's last completion), then the reason.
    @Test func inboundCloseKeepsBufferedThenThrows() async throws {
        let spy = LoopTaskSpy()
        let queue = InboundMessageQueue(limit: 100, loop: group.loops[0], owner: spy)
        queue.push([1])
        queue.push([2])
        queue.close(RPCStatus(.cancelled, "reset"))
        queue.push([3])  // ignored after the close
        #expect(try await queue.next() == [1])
        #expect(try await queue.next() == [2])
        await #expect(throws: RPCStatus(.cancelled, "reset")) { _ = try await queue.next() }
        // A waiting reader is woken with the reason.
        let empty = InboundMessageQueue(limit: 100, loop: group.loops[0], owner: spy)
        let waiter = Task { try await empty.next() }
        try await Task.sleep(for: .milliseconds(20))
        empty.close(RPCStatus(.unavailable, "gone"))
        await #expect(throws: RPCStatus(.unavailable, "gone")) { _ = try await waiter.value }
        group.shutdown()
    }

    @Test func inboundFailDropsBufferedAndWakesWaiter() async throws {
        let spy = LoopTaskSpy()
        let queue = InboundMessageQueue(limit: 100, loop: group.loops[0], owner: spy)
        let waiter = Task { try await queue.next() }
        try await Task.sleep(for: .milliseconds(20))
        queue.fail(RPCStatus(.cancelled))
        await #expect(throws: RPCStatus(.cancelled)) { _ = try await waiter.value }
        queue.push([1])  // ignored after failure
        await #expect(throws: RPCStatus(.cancelled)) { _ = try await queue.next() }
        group.shutdown()
    }

    @Test func inboundOverLimitSchedulesOwnerOnceDrained() async throws {
        let spy = LoopTaskSpy()
        let queue = InboundMessageQueue(limit: overhead + 10, loop: group.loops[0], owner: spy)
        #expect(queue.push([UInt8](repeating: 0, count: 8)))
        #expect(!queue.push([UInt8](repeating: 0, count: 8)))  // 2 × (64 + 8) > 74: window must be held
        queue.requestDrainNotification()
        try await Task.sleep(for: .milliseconds(20))
        #expect(spy.runs.load(ordering: .relaxed) == 0)
        _ = try await queue.next()  // back to 72 <= 74
        #expect(await eventually { spy.runs.load(ordering: .relaxed) == 1 })
        group.shutdown()
    }

    /// Empty messages counted nothing: a handler that stopped reading queued them without end.
    @Test func emptyMessagesCountTowardsTheLimit() {
        let spy = LoopTaskSpy()
        let queue = InboundMessageQueue(limit: 3 * overhead, loop: group.loops[0], owner: spy)
        #expect(queue.push([]) && queue.push([]) && queue.push([]))
        #expect(!queue.push([]))
        #expect(queue.isWithinLimit(plus: overhead) && !queue.isWithinLimit)
        group.shutdown()
    }

    @Test func outboundSendSuspendsOverLimitUntilRead() async throws {
        let spy = LoopTaskSpy()
        let queue = OutboundMessageQueue(limit: 10, loop: group.loops[0], owner: spy)
        try await queue.send([UInt8](repeating: 1, count: 6))  // under the limit: returns at once
        let done = Box(false)
        let sender = Task {
            try await queue.send([UInt8](repeating: 2, count: 6))  // 12 > 10: waits
            done.set(true)
        }
        try await Task.sleep(for: .milliseconds(30))
        #expect(!done.get)
        var buffer = [UInt8](repeating: 0, count: 4)
        let (count, end) = buffer.withUnsafeMutableBytes { queue.read(into: $0) }
        #expect(count == 4 && end == nil && buffer == [1, 1, 1, 1])
        try await sender.value  // 8 <= 10 now
        #expect(done.get)
        #expect(await eventually { spy.runs.load(ordering: .relaxed) >= 1 })  // the first send scheduled the stream
        group.shutdown()
    }

    @Test func outboundEndComesOnlyAfterTheLastByte() throws {
        let spy = LoopTaskSpy()
        let queue = OutboundMessageQueue(limit: 100, loop: group.loops[0], owner: spy)
        queue.finish(.halfClose)
        var buffer = [UInt8](repeating: 0, count: 3)
        let empty = buffer.withUnsafeMutableBytes { queue.read(into: $0) }
        #expect(empty.count == 0)
        if case .halfClose = empty.end {} else { Issue.record("expected the end") }
        group.shutdown()
    }

    @Test func outboundTerminateFailsWaitersAndReplacesEnd() async throws {
        let spy = LoopTaskSpy()
        let queue = OutboundMessageQueue(limit: 1, loop: group.loops[0], owner: spy)
        let sender = Task { try await queue.send([1, 2, 3]) }
        try await Task.sleep(for: .milliseconds(20))
        queue.finish(.status(.ok, Metadata()))
        queue.terminate(RPCStatus(.deadlineExceeded), end: .status(RPCStatus(.deadlineExceeded), Metadata()))
        await #expect(throws: RPCStatus(.deadlineExceeded)) { try await sender.value }
        await #expect(throws: RPCStatus(.deadlineExceeded)) { try await queue.send([9]) }
        var buffer = [UInt8](repeating: 0, count: 8)
        let result = buffer.withUnsafeMutableBytes { queue.read(into: $0) }
        #expect(result.count == 0)
        if case .status(let status, _) = result.end {
            #expect(status.code == .deadlineExceeded)
        } else {
            Issue.record("expected the deadline status as the end")
        }
        group.shutdown()
    }
}
