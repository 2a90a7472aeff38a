import Testing
@testable import NGRPC

@Suite struct TokenBucketTableTests {
    let start = ContinuousClock.now

    @Test func burstThenLimitedWithTheExactWait() {
        let table = TokenBucketTable(rate: 4, burst: 3)
        for _ in 0..<3 { #expect(table.take("alice", now: start) == .allowed) }
        // Empty: the next token arrives after 1/4 s.
        #expect(table.take("alice", now: start) == .limited(retryAfter: .milliseconds(250)))
        // 100 ms later 0.4 of a token is back: 150 ms to go.
        #expect(table.take("alice", now: start + .milliseconds(100)) == .limited(retryAfter: .milliseconds(150)))
        #expect(table.take("alice", now: start + .milliseconds(250)) == .allowed)
        #expect(table.take("alice", now: start + .milliseconds(250)) == .limited(retryAfter: .milliseconds(250)))
    }

    @Test func refillNeverExceedsTheBurst() {
        let table = TokenBucketTable(rate: 10, burst: 2)
        #expect(table.take("bob", now: start) == .allowed)
        let later = start + .seconds(60)
        #expect(table.take("bob", now: later) == .allowed)
        #expect(table.take("bob", now: later) == .allowed)
        #expect(table.take("bob", now: later) != .allowed)
    }

    @Test func identitiesHaveTheirOwnBuckets() {
        let table = TokenBucketTable(rate: 1, burst: 1)
        #expect(table.take("tenant-a/alice", now: start) == .allowed)
        #expect(table.take("tenant-a/alice", now: start) != .allowed)
        #expect(table.take("tenant-b/alice", now: start) == .allowed)
    }

    @Test func idleBucketsAreEvictedAtCapacity() {
        let table = TokenBucketTable(rate: 10, burst: 5, capacity: 3)
        for key in ["a", "b", "c"] { #expect(table.take(key, now: start) == .allowed) }
        #expect(table.count == 3)
        // One second later all three are full again, so a fourth caller sweeps them out.
        #expect(table.take("d", now: start + .seconds(1)) == .allowed)
        #expect(table.count == 1)
    }

    @Test func activeBucketsAtCapacityLoseTheOldest() {
        let table = TokenBucketTable(rate: 1, burst: 5, capacity: 2)
        #expect(table.take("old", now: start) == .allowed)
        #expect(table.take("new", now: start + .milliseconds(10)) == .allowed)
        #expect(table.take("third", now: start + .milliseconds(20)) == .allowed)
        #expect(table.count == 2)
        // "old" was dropped: it starts again with a full burst.
        for _ in 0..<5 { #expect(table.take("old", now: start + .milliseconds(30)) == .allowed) }
    }

    @Test func limitedCallsGetPushbackTrailerAndRetryInfo() {
        let context = ServerContext(
            method: MethodDescriptor(service: "s", method: "m", kind: .unary), requestMetadata: Metadata(),
            deadline: nil, trace: .start(), peer: "10.1.2.3:5555")
        let status = RateLimitInterceptor.status(retryAfter: .milliseconds(1500), context: context)
        #expect(status.code == .resourceExhausted)
        #expect(status.message == "rate limit exceeded; retry after 1500 ms")
        #expect(context.trailers["grpc-retry-pushback-ms"] == "1500")
        #expect(context.peerAddress == "10.1.2.3")
        let details = status.details ?? []
        // google.rpc.Status: code 8, the message, one Any holding RetryInfo{retry_delay: 1.5 s}.
        let typeURL = Array("type.googleapis.com/google.rpc.RetryInfo".utf8)
        let duration: [UInt8] = [0x08, 0x01, 0x10] + varint(500_000_000)
        let retryInfo: [UInt8] = [0x0A, UInt8(duration.count)] + duration
        let any: [UInt8] = [0x0A, UInt8(typeURL.count)] + typeURL + [0x12, UInt8(retryInfo.count)] + retryInfo
        let message = Array(status.message.utf8)
        #expect(details == [0x08, 0x08, 0x12, UInt8(message.count)] + message + [0x1A, UInt8(any.count)] + any)
    }

    @Test func peerAddressStripsThePort() {
        #expect(ConnectionAdmission.clientAddress(ofPeer: "[::1]:4000") == "[::1]")
        #expect(ConnectionAdmission.clientAddress(ofPeer: "127.0.0.1:80") == "127.0.0.1")
        #expect(ConnectionAdmission.clientAddress(ofPeer: "in-process") == "in-process")
        #expect(ConnectionAdmission.clientAddress(ofPeer: "[2001:db8:1:2:a:b:c:d]:443") == "[2001:db8:1:2::]/64")
        #expect(ConnectionAdmission.clientAddress(ofPeer: "[2001:db8:1:2::ffff]:1") == "[2001:db8:1:2::]/64")
        #expect(ConnectionAdmission.clientAddress(ofPeer: "[2001:db8:1:3::1]:1") == "[2001:db8:1:3::]/64")
        #expect(ConnectionAdmission.clientAddress(ofPeer: "[::ffff:10.1.2.3]:1") == "[::ffff:10.1.2.3]")
    }

    @Test func admissionCountsPerClientAndForgets() {
        let admission = ConnectionAdmission(limit: 2)
        #expect(admission.admit("a") == .admitted && admission.admit("a") == .admitted)
        #expect(admission.admit("a") == .tooManyFromClient)
        #expect(admission.admit("b") == .admitted)
        admission.release("a")
        #expect(admission.admit("a") == .admitted)
        admission.release("a")
        admission.release("a")
        #expect(admission.openConnections(from: "a") == 0)
        #expect(admission.openConnections == 1)
    }

    @Test func admissionBoundsTheServerWideTotal() {
        let admission = ConnectionAdmission(limit: nil, totalLimit: 3)
        for client in ["a", "b", "c"] { #expect(admission.admit(client) == .admitted) }
        #expect(admission.admit("d") == .tooManyInAll)
        #expect(admission.openConnections == 3)
        admission.release("b")
        #expect(admission.admit("d") == .admitted)
        // Both limits: the server-wide one is checked first, and a refusal counts nothing.
        let both = ConnectionAdmission(limit: 1, totalLimit: 2)
        #expect(both.admit("a") == .admitted)
        #expect(both.admit("a") == .tooManyFromClient)
        #expect(both.admit("b") == .admitted)
        #expect(both.admit("c") == .tooManyInAll)
        #expect(both.openConnections == 2 && both.openConnections(from: "a") == 1)
    }

    @Test func aFloodOfNewCallersEvictsInBatches() {
        let table = TokenBucketTable(rate: 1, burst: 5, capacity: 800)
        for index in 0..<800 { #expect(table.take("k\(index)", now: start + .milliseconds(index)) == .allowed) }
        #expect(table.count == 800)
        // Full of active buckets: the next caller frees an eighth (the 100 idle longest) at once.
        #expect(table.take("new", now: start + .seconds(1)) == .allowed)
        #expect(table.count == 701)
        // k0 was evicted (full burst again); k799 was kept (one token already taken).
        for _ in 0..<5 { #expect(table.take("k0", now: start + .seconds(1)) == .allowed) }
        for _ in 0..<4 { #expect(table.take("k799", now: start + .milliseconds(800)) == .allowed) }
        #expect(table.take("k799", now: start + .milliseconds(800)) != .allowed)
    }

    private func varint(_ value: UInt64) -> [UInt8] {
        var out: [UInt8] = []
        var v = value
        while v >= 0x80 {
            out.append(UInt8(v & 0x7F) | 0x80)
            v >>= 7
        }
        out.append(UInt8(v))
        return out
    }
}
